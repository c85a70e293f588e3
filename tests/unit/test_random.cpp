// The server's secrets: hex from getrandom(2).
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "tessera/auth/random.h"

TEST_CASE("auth: randomHex gives 2 hex digits a byte, a new value each time", "[random]") {
    CHECK(tessera::auth::randomHex(0).empty());
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const std::string id = tessera::auth::randomHex(16);
        REQUIRE(id.size() == 32);
        CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
        seen.insert(id);
    }
    // 1000 draws of 128 bits: a repeat would mean the source is not random.
    CHECK(seen.size() == 1000);
    // Every digit turns up (a stuck nibble would not).
    std::string all;
    for (const auto& id : seen) all += id;
    for (const char digit : std::string("0123456789abcdef")) CHECK(all.find(digit) != std::string::npos);
}
