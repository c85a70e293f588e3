// The pure parts of the limits against hostile clients (docs/config.md
// "Limits", docs/protocol.md "Origin"): the token bucket, the per-minute
// join counter and the Origin check.
#include <catch2/catch.hpp>

#include "tessera/policy/rate.h"
#include "tessera/protocol/origin.h"

using tessera::policy::TokenBucket;
using tessera::policy::WindowCounter;
using tessera::protocol::normaliseOrigin;
using tessera::protocol::originAllowed;

namespace {
constexpr std::int64_t kSecond = 1'000'000;
}

TEST_CASE("token bucket: a full burst passes at once, then the rate", "[limits][rate]") {
    TokenBucket bucket(10, 5);
    const std::int64_t t0 = 42 * kSecond;
    for (int i = 0; i < 5; ++i) CHECK(bucket.take(t0));
    CHECK_FALSE(bucket.take(t0));
    // 10 per second: one token every 100 ms, none before.
    CHECK_FALSE(bucket.take(t0 + kSecond / 10 - 1));
    CHECK(bucket.take(t0 + kSecond / 10));
    CHECK_FALSE(bucket.take(t0 + kSecond / 10));
    // A long pause refills only up to the burst.
    const std::int64_t later = t0 + 3600 * kSecond;
    for (int i = 0; i < 5; ++i) CHECK(bucket.take(later));
    CHECK_FALSE(bucket.take(later));
}

TEST_CASE("token bucket: sustained flood passes at the rate over a long run", "[limits][rate]") {
    TokenBucket bucket(20, 50);
    int passed = 0;
    // 1000 attempts a second for 10 s.
    for (std::int64_t t = 0; t < 10 * kSecond; t += kSecond / 1000) passed += bucket.take(t) ? 1 : 0;
    CHECK(passed >= 50 + 20 * 10 - 1);
    CHECK(passed <= 50 + 20 * 10);
}

TEST_CASE("token bucket: counts, unlimited, huge values and a clock going back", "[limits][rate]") {
    TokenBucket bytes(1000, 4000);
    CHECK(bytes.take(0, 4000));
    CHECK_FALSE(bytes.take(0, 1));
    CHECK_FALSE(bytes.take(kSecond, 4001)); // more than the burst never passes
    CHECK(bytes.take(kSecond, 1000));
    CHECK_FALSE(bytes.take(kSecond / 2, 1)); // backwards: nothing added

    TokenBucket unlimited(0, 1);
    for (int i = 0; i < 1000; ++i) CHECK(unlimited.take(0, 1'000'000'000));

    TokenBucket big(4'000'000'000ULL, 4'000'000'000ULL);
    CHECK(big.take(0, 4'000'000'000ULL));
    CHECK_FALSE(big.take(0, 1));
    CHECK(big.take(std::int64_t{1} << 50, 4'000'000'000ULL)); // no overflow after decades idle
}

TEST_CASE("window counter: each key gets its limit per window, all restart when it ends", "[limits][rate]") {
    const std::int64_t minute = 60 * kSecond;
    WindowCounter joins(3, minute);
    const std::int64_t t0 = 7 * kSecond;
    for (int i = 0; i < 3; ++i) CHECK(joins.take("10.0.0.1", t0 + i));
    CHECK_FALSE(joins.take("10.0.0.1", t0 + 3));
    // A refusal is not counted against the next window, other keys are apart.
    CHECK(joins.take("10.0.0.2", t0 + minute - 1));
    CHECK_FALSE(joins.take("10.0.0.1", t0 + minute - 1));
    for (int i = 0; i < 3; ++i) CHECK(joins.take("10.0.0.1", t0 + minute));
    CHECK_FALSE(joins.take("10.0.0.1", t0 + minute));
    // A clock going back starts no new window.
    CHECK_FALSE(joins.take("10.0.0.1", t0));
    WindowCounter unlimited(0, minute);
    for (int i = 0; i < 1000; ++i) CHECK(unlimited.take("10.0.0.1", t0));
}

TEST_CASE("origin: normalised to scheme://host[:port], lower case, no default port", "[limits][origin]") {
    CHECK(normaliseOrigin("http://Example.ORG") == "http://example.org");
    CHECK(normaliseOrigin("https://example.org:443") == "https://example.org");
    CHECK(normaliseOrigin("http://example.org:80/") == "http://example.org");
    CHECK(normaliseOrigin("http://127.0.0.1:8080") == "http://127.0.0.1:8080");
    CHECK(normaliseOrigin("http://[::1]:8080") == "http://[::1]:8080");
    CHECK(normaliseOrigin("https://example.org:8443") == "https://example.org:8443");
    CHECK_FALSE(normaliseOrigin("null"));
    CHECK_FALSE(normaliseOrigin("file://"));
    CHECK_FALSE(normaliseOrigin("ftp://example.org"));
    CHECK_FALSE(normaliseOrigin("http://example.org/path"));
    CHECK_FALSE(normaliseOrigin("http://user@example.org"));
    CHECK_FALSE(normaliseOrigin("http://example.org:x"));
    CHECK_FALSE(normaliseOrigin("http://"));
}

TEST_CASE("origin: no Origin and same-origin pass; other sites only when listed", "[limits][origin]") {
    const std::vector<std::string> none;
    CHECK(originAllowed(std::nullopt, "127.0.0.1:8080", none));
    CHECK(originAllowed("http://127.0.0.1:8080", "127.0.0.1:8080", none));
    CHECK(originAllowed("http://LOCALHOST:8080", "localhost:8080", none));
    CHECK(originAllowed("https://meet.example.org", "meet.example.org", none));
    CHECK(originAllowed("https://meet.example.org", "meet.example.org:443", none));
    CHECK(originAllowed("http://meet.example.org", "meet.example.org:80", none));
    CHECK(originAllowed("http://[::1]:8080", "[::1]:8080", none));
    // Another port is another origin; a look-alike host is another site.
    CHECK_FALSE(originAllowed("http://127.0.0.1:9999", "127.0.0.1:8080", none));
    CHECK_FALSE(originAllowed("http://localhost:8080", "127.0.0.1:8080", none));
    CHECK_FALSE(originAllowed("https://evil.example", "127.0.0.1:8080", none));
    CHECK_FALSE(originAllowed("http://127.0.0.1:8080.evil.example", "127.0.0.1:8080", none));
    CHECK_FALSE(originAllowed("null", "127.0.0.1:8080", none));
    CHECK_FALSE(originAllowed("", "127.0.0.1:8080", none));
    CHECK_FALSE(originAllowed("https://evil.example", "", none));

    const std::vector<std::string> listed = {"https://app.example.org"};
    CHECK(originAllowed("https://APP.example.org:443", "tessera.internal:8080", listed));
    CHECK_FALSE(originAllowed("http://app.example.org", "tessera.internal:8080", listed));
    CHECK(originAllowed("http://127.0.0.1:8080", "127.0.0.1:8080", listed)); // same-origin still passes
    CHECK(originAllowed("https://anything.example", "x", {"*"}));
    CHECK(originAllowed("null", "x", {"*"}));
}
