#define G_LOG_DOMAIN "tessera-server"
#include "whip.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <variant>

#include "http.h"
#include "overloaded.h"
#include "tessera/auth/random.h"
#include "tessera/glib/raii.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/messages.h"
#include "tessera/protocol/offer_plan.h"
#include "tessera/protocol/token.h"
#include "tessera/protocol/whip.h"

namespace tessera::server {
namespace {

// How long a POST waits, once the answer exists, for the server to finish
// gathering: its candidates go in the answer (a WHIP client takes none
// later). Host candidates take milliseconds; a TURN allocation may take
// seconds. At the bound the answer goes with what was gathered.
constexpr guint kGatheringBoundMs = 5000;

// A resource id's size: 128 bits, past guessing. On a server without
// tokens, knowing the resource URL is all it takes to end a session.
constexpr std::size_t kResourceIdBytes = 16;

std::string contentTypeOf(SoupServerMessage* msg) {
    const char* type = soup_message_headers_get_content_type(soup_server_message_get_request_headers(msg), nullptr);
    return type != nullptr ? type : "";
}

// What the endpoint's query says: `name` (the display name, or a default)
// and, for a viewer, `tier` (a quality tier's name; Rooms checks it).
struct Query {
    std::string name;
    std::optional<std::string> tier;
};

Query queryOf(SoupServerMessage* msg, const char* defaultName) {
    Query out{defaultName, std::nullopt};
    GUri* uri = soup_server_message_get_uri(msg);
    const char* query = uri != nullptr ? g_uri_get_query(uri) : nullptr;
    if (query == nullptr) return out;
    GHashTable* params = g_uri_parse_params(query, -1, "&", G_URI_PARAMS_WWW_FORM, nullptr);
    if (params == nullptr) throw Error(ErrorCode::BadRequest, "the query string is not name=value pairs");
    const auto* name = static_cast<const char*>(g_hash_table_lookup(params, "name"));
    const auto* tier = static_cast<const char*>(g_hash_table_lookup(params, "tier"));
    if (name != nullptr) out.name = name;
    if (tier != nullptr) out.tier = tier;
    g_hash_table_unref(params);
    if (!protocol::isValidName(out.name))
        throw Error(ErrorCode::BadRequest, "name must be 1-64 characters, no controls");
    return out;
}

std::string remoteAddress(SoupServerMessage* msg) {
    const char* address = soup_server_message_get_remote_host(msg);
    return address != nullptr ? address : "";
}

} // namespace

// One publisher or viewer: the room's sink for its participant, and the
// POST that waits for the answer.
class Whip::Resource final : public room::ClientSink {
public:
    // `token`: what PATCH and DELETE must present, or nullopt for nothing.
    Resource(Whip& owner, std::string room, SoupServerMessage* post, std::optional<std::string> token)
        : m_owner(owner), m_room(std::move(room)), m_address(remoteAddress(post)),
          m_resourceId(auth::randomHex(kResourceIdBytes)), m_token(std::move(token)),
          m_post(glib::Ref<SoupServerMessage>::borrow(post)) {}
    ~Resource() override {
        if (m_deadline != 0) g_source_remove(m_deadline);
        if (m_post) fail(Error(ErrorCode::ServerFull, "the server is shutting down"));
    }
    Resource(const Resource&) = delete;
    Resource& operator=(const Resource&) = delete;

    // The POST waits (paused) for the answer, unless it was answered already
    // (the participant failed while its offer was applied).
    void hold() {
        if (!m_post) return;
        soup_server_message_pause(m_post.get());
        m_held = true;
    }
    // Forgets the POST without answering it: the caller answers.
    void release() { m_post = {}; }
    bool answered() const noexcept { return !m_post; }

    const std::string& room() const noexcept { return m_room; }
    const std::string& address() const noexcept { return m_address; }
    // The participant's id (empty once it left), as the room knows it.
    const std::string& id() const noexcept { return m_id; }
    void joined(std::string id) { m_id = std::move(id); }
    // The secret last segment of the resource URL.
    const std::string& resourceId() const noexcept { return m_resourceId; }
    // Throws Error(Unauthorized) unless `msg` presents the POST's token (when
    // one was needed), compared in constant time.
    void authorize(SoupServerMessage* msg) const {
        if (!m_token) return;
        const std::optional<std::string> given = http::bearer(msg);
        if (!given) throw Error(ErrorCode::Unauthorized, "this resource needs the token its POST had");
        if (!tokensEqual(*given, *m_token))
            throw Error(ErrorCode::Unauthorized, "not the token of this resource's POST");
    }
    // The ICE username the client offered: a PATCH with another is an ICE restart.
    std::optional<std::string> clientUfrag;

    // Thread: main.
    void send(const protocol::ServerMessage& message) override {
        std::visit(Overloaded{
                       [&](const protocol::Joined& joined) { m_iceServers = joined.iceServers; },
                       [&](const protocol::Answer& answer) {
                           m_answer = answer.sdp;
                           m_deadline = g_timeout_add(kGatheringBoundMs, &Resource::deadlineThunk, this);
                       },
                       [&](const protocol::Candidate& candidate) {
                           if (candidate.candidate)
                               m_candidates.push_back(*candidate.candidate);
                           else
                               answer(true);
                       },
                       [&](const protocol::ErrorMessage& error) {
                           if (m_post) fail(Error(error.code, error.message));
                       },
                       [](const auto&) {}, // room events: a WHIP or WHEP client has no channel for them
                   },
                   message);
    }

    // Rooms removed the participant (kicked, join timeout, media failed).
    void disconnect(const std::string& reason) override {
        if (m_post) fail(Error(ErrorCode::Conflict, "the participant was removed: " + reason));
        m_id.clear();
        m_owner.forget(*this);
    }

private:
    // Thread: main (GLib timeout).
    static gboolean deadlineThunk(gpointer self) noexcept {
        glib::guarded("whip gathering deadline", [self] {
            auto* r = static_cast<Resource*>(self);
            r->m_deadline = 0;
            r->answer(false);
        });
        return G_SOURCE_REMOVE;
    }

    // 201 with the answer and the candidates gathered; `complete` adds
    // a=end-of-candidates.
    void answer(bool complete) {
        if (!m_post || m_answer.empty()) return;
        if (m_deadline != 0) {
            g_source_remove(m_deadline);
            m_deadline = 0;
        }
        SoupServerMessage* msg = m_post.get();
        const std::string location =
            std::string(m_owner.m_kind == Kind::Publish ? "/whip/" : "/whep/") + m_room + "/" + m_resourceId;
        SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
        soup_message_headers_replace(headers, "Location", location.c_str());
        soup_message_headers_replace(headers, "ETag", ("\"" + m_id + "\"").c_str());
        // The STUN and TURN servers (with this participant's TURN credential),
        // as the WebSocket's `joined` gives them.
        for (const std::string& link : protocol::whip::iceServerLinks(m_iceServers))
            soup_message_headers_append(headers, "Link", link.c_str());
        http::respond(msg, SOUP_STATUS_CREATED, "application/sdp",
                      protocol::whip::withCandidates(m_answer, m_candidates, complete));
        if (m_held) soup_server_message_unpause(msg);
        m_post = {};
    }

    void fail(const Error& error) {
        http::respondError(m_post.get(), error);
        if (m_held) soup_server_message_unpause(m_post.get());
        m_post = {};
    }

    Whip& m_owner;
    std::string m_room, m_address, m_id;
    const std::string m_resourceId;
    const std::optional<std::string> m_token;
    glib::Ref<SoupServerMessage> m_post; // the POST until it is answered
    std::string m_answer;
    std::vector<protocol::IceCandidate> m_candidates;
    std::vector<protocol::IceServer> m_iceServers;
    guint m_deadline = 0;
    bool m_held = false; // m_post is paused
};

Whip::Whip(Kind kind, room::Rooms& rooms, unsigned perAddress, bool tokens,
           std::function<void(std::string_view)> countJoin)
    : m_kind(kind), m_rooms(rooms), m_perAddress(perAddress), m_tokens(tokens), m_countJoin(std::move(countJoin)) {}

Whip::~Whip() {
    if (m_reapSource != 0) g_source_remove(m_reapSource);
    auto resources = std::move(m_resources);
    m_resources.clear();
    for (auto& [key, resource] : resources)
        if (!resource->id().empty()) m_rooms.leave(resource->id());
}

void Whip::handle(SoupServerMessage* msg, const std::vector<std::string>& segments) {
    if (segments.size() == 1) {
        if (http::method(msg) == "OPTIONS") return options(msg, "POST", "Accept-Post", "application/sdp");
        if (!http::allowMethods(msg, "POST")) return;
        try {
            start(msg, segments[0]);
        } catch (const protocol::UnsupportedCodec& e) {
            // Well-formed, but nothing the server takes (RFC 9725: 422).
            http::respondError(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, ErrorCode::BadRequest, e.what());
        }
        return;
    }
    Resource* found = segments.size() == 2 ? find(segments[0], segments[1]) : nullptr;
    if (found == nullptr) throw Error(ErrorCode::NotFound, std::string("no such ") + label() + " resource");
    // A browser's preflight carries no Authorization: it is answered without.
    if (http::method(msg) == "OPTIONS")
        return options(msg, "PATCH, DELETE", "Accept-Patch", "application/trickle-ice-sdpfrag");
    if (!http::allowMethods(msg, "PATCH, DELETE")) return;
    found->authorize(msg);
    if (http::method(msg) == "PATCH")
        patch(msg, *found);
    else
        remove(*found);
    if (http::method(msg) == "DELETE") http::respond(msg, SOUP_STATUS_OK, nullptr, {});
}

// A browser's CORS preflight (the server adds Access-Control-Allow-Origin
// for a page it allows), or a client asking what the URL takes.
void Whip::options(SoupServerMessage* msg, const char* methods, const char* acceptHeader, const char* accepted) {
    SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
    const std::string allow = std::string(methods) + ", OPTIONS";
    soup_message_headers_replace(headers, "Allow", allow.c_str());
    soup_message_headers_replace(headers, acceptHeader, accepted);
    soup_message_headers_replace(headers, "Access-Control-Allow-Methods", allow.c_str());
    soup_message_headers_replace(headers, "Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match");
    soup_message_headers_replace(headers, "Access-Control-Max-Age", "600");
    http::respond(msg, SOUP_STATUS_NO_CONTENT, nullptr, {});
}

void Whip::start(SoupServerMessage* msg, const std::string& room) {
    if (contentTypeOf(msg) != "application/sdp")
        return http::respondError(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, ErrorCode::BadRequest,
                                  std::string("a ") + label() + " offer is Content-Type: application/sdp");
    const std::string offer = http::requestBody(msg);
    const Query query = queryOf(msg, m_kind == Kind::Publish ? "WHIP publisher" : "WHEP viewer");
    if (!protocol::isValidRoomName(room)) throw Error(ErrorCode::BadRequest, "room must be 1-64 of [A-Za-z0-9_-]");
    const std::string address = remoteAddress(msg);
    if (m_perAddress != 0 && std::count_if(m_resources.begin(), m_resources.end(), [&](const auto& r) {
                                 return r.second->address() == address;
                             }) >= static_cast<std::ptrdiff_t>(m_perAddress)) {
        throw Error(ErrorCode::RateLimited,
                    std::to_string(m_perAddress) + " " + label() +
                        " sessions from this address are open already (limits.viewersPerAddress)");
    }
    m_countJoin(address);
    // Admitted with a token (Rooms checks it), the session is ended only with it.
    auto owned = std::make_unique<Resource>(*this, room, msg, m_tokens ? http::bearer(msg) : std::nullopt);
    Resource& resource = *owned;
    m_resources.emplace(&resource, std::move(owned));
    std::string id;
    try {
        id = m_kind == Kind::Publish
                 ? m_rooms.join(protocol::Join{room, query.name, http::bearer(msg), std::nullopt, false}, resource)
                 : m_rooms.view(room::ViewRequest{room, query.name, http::bearer(msg), query.tier}, resource);
        resource.joined(id);
        resource.clientUfrag = protocol::whip::iceUfrag(offer);
        // The answer comes later, from the main loop, never from inside this call.
        m_rooms.offer(id, offer);
    } catch (...) {
        // Nothing half-made stays: the participant leaves, the resource goes,
        // and the caller answers with the error.
        if (!id.empty()) m_rooms.leave(id);
        if (auto it = m_resources.find(&resource); it != m_resources.end()) {
            it->second->release();
            m_resources.erase(it);
        }
        throw;
    }
    resource.hold();
    g_info("%s %s %s %s room '%s'", label(), m_kind == Kind::Publish ? "publisher" : "viewer", id.c_str(),
           m_kind == Kind::Publish ? "joined" : "watches", room.c_str());
}

Whip::Resource* Whip::find(const std::string& room, const std::string& id) const {
    Resource* found = nullptr;
    // Every resource is compared, to the end of its id: no early way out.
    for (const auto& [key, resource] : m_resources)
        if (tokensEqual(id, resource->resourceId()) && resource->room() == room && !resource->id().empty()) found = key;
    return found;
}

void Whip::patch(SoupServerMessage* msg, Resource& resource) {
    if (contentTypeOf(msg) != "application/trickle-ice-sdpfrag")
        return http::respondError(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, ErrorCode::BadRequest,
                                  std::string("a ") + label() +
                                      " PATCH is Content-Type: application/trickle-ice-sdpfrag");
    // If-Match names the session the PATCH is for (RFC 9725 4.3.1): its ETag.
    const char* match = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "If-Match");
    if (match != nullptr && std::string_view(match) != "*" && std::string_view(match) != "\"" + resource.id() + "\"")
        return http::respondError(msg, SOUP_STATUS_PRECONDITION_FAILED, ErrorCode::BadRequest,
                                  std::string("If-Match ") + match + " is not this session's ETag");
    const protocol::whip::SdpFragment fragment = protocol::whip::parseSdpFragment(http::requestBody(msg));
    if (fragment.iceUfrag && resource.clientUfrag && *fragment.iceUfrag != *resource.clientUfrag)
        return http::respondError(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, ErrorCode::BadRequest,
                                  "ICE restarts are not supported: POST a new offer");
    for (const auto& candidate : fragment.candidates) m_rooms.candidate(resource.id(), candidate);
    if (fragment.endOfCandidates) m_rooms.candidate(resource.id(), std::nullopt);
    http::respond(msg, SOUP_STATUS_NO_CONTENT, nullptr, {});
}

void Whip::remove(Resource& resource) {
    const std::string id = resource.id();
    g_info("%s session %s left room '%s'", label(), id.c_str(), resource.room().c_str());
    m_rooms.leave(id); // disconnect() is not called for a leave: forget it here
    resource.joined({});
    forget(resource);
}

void Whip::forget(Resource& resource) {
    const auto it = m_resources.find(&resource);
    if (it == m_resources.end()) return;
    m_forgotten.push_back(std::move(it->second));
    m_resources.erase(it);
    if (m_reapSource == 0) {
        m_reapSource = g_idle_add(
            // Thread: main.
            [](gpointer self) noexcept -> gboolean {
                auto* whip = static_cast<Whip*>(self);
                whip->m_reapSource = 0;
                whip->m_forgotten.clear();
                return G_SOURCE_REMOVE;
            },
            this);
    }
}

} // namespace tessera::server
