// PeerCore's lifecycle: its bin and webrtcbin, ICE and TURN, the signals it
// listens to, ICE candidates both ways, the connection state, and stop().
#include "peer.h"

#include <algorithm>
#include <atomic>

#include <agent.h>

#include "ice.h"
#include "peer_detail.h"
#include "tessera/protocol/error.h"
#include "tessera/protocol/turn_credentials.h"
#include "tessera/protocol/uri.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
using namespace peer_detail;

namespace {

// Unlinks and releases a tee's request pad once it is idle, then calls `done`.
struct IdleDetach {
    PadDetach detach;
    std::function<void()> done;
};

// Thread: streaming (the tee's, in an IDLE probe).
GstPadProbeReturn detachIdle(GstPad* pad, GstPadProbeInfo*, gpointer data) noexcept {
    glib::guarded("peer detach probe", [&] {
        auto* d = static_cast<IdleDetach*>(data);
        if (GstPad* peer = gst_pad_get_peer(pad)) {
            gst_pad_unlink(pad, peer);
            gst_object_unref(peer);
        }
        gst_element_release_request_pad(d->detach.element.get(), pad);
        // Here, not posted to the main loop: a room closing, or the server
        // stopping, waits for the teardown this leads to.
        d->done();
    });
    return GST_PAD_PROBE_REMOVE;
}

// Hands ICE the room's STUN and TURN servers and the local addresses to gather on.
// With a TURN secret the server mints itself a credential, as for a participant.
void configureIce(GstElement* webrtc, const Config& config, const std::vector<std::string>& addresses) {
    for (const auto& server : protocol::iceServersFor(config, "tessera", g_get_real_time() / G_USEC_PER_SEC)) {
        for (const auto& url : server.urls) {
            if (protocol::hasScheme(url, {"stun"})) {
                g_object_set(webrtc, "stun-server", ("stun://" + url.substr(5)).c_str(), nullptr);
            } else if (protocol::hasScheme(url, {"turn"}) && !server.username.empty()) {
                auto hostPort =
                    url.substr(5, url.find('?') == std::string::npos ? std::string::npos : url.find('?') - 5);
                GCharPtr user(g_uri_escape_string(server.username.c_str(), nullptr, FALSE));
                GCharPtr pass(g_uri_escape_string(server.credential.c_str(), nullptr, FALSE));
                std::string uri = "turn://" + std::string(user.get()) + ":" + pass.get() + "@" + hostPort;
                gboolean ok = FALSE;
                g_signal_emit_by_name(webrtc, "add-turn-server", uri.c_str(), &ok);
            }
        }
    }
    GstObject* ice = nullptr;
    g_object_get(webrtc, "ice-agent", &ice, nullptr);
    if (!ice) return;
    if (config.maxRtpPort)
        g_object_set(ice, "min-rtp-port", config.minRtpPort, "max-rtp-port", config.maxRtpPort, nullptr);
    NiceAgent* agent = nullptr;
    g_object_get(ice, "agent", &agent, nullptr);
    for (const auto& address : addresses) {
        NiceAddress a;
        nice_address_init(&a);
        if (agent && nice_address_set_from_string(&a, address.c_str())) nice_agent_add_local_address(agent, &a);
    }
    if (agent) g_object_unref(agent);
    gst_object_unref(ice);
}

// Holds the reference a getter returned. webrtcbin 1.22 leaves some of its
// objects (ICE streams, transports) floating, so no adopt().
Ref<GObject> hold(gpointer returned) {
    auto ref = Ref<GObject>::borrow(static_cast<GObject*>(returned));
    if (returned) g_object_unref(returned);
    return ref;
}

Ref<GObject> property(const Ref<GObject>& object, const char* name) {
    gpointer value = nullptr;
    if (object) g_object_get(object.get(), name, &value, nullptr);
    return hold(value);
}

} // namespace

PeerCore::PeerCore(PeerRoom& room, std::string id, PeerOptions options, PeerListener& listener, unsigned order)
    : m_room(room), m_parts(room.parts()), m_id(std::move(id)), m_options(std::move(options)), m_listener(listener),
      m_order(order), m_bwe([&] {
          // The estimate starts high enough never to hold back the top tier.
          policy::BandwidthParams params;
          if (!m_parts.ladder.empty()) params.maxBps = std::max(params.maxBps, 2 * m_parts.ladder.front().bitrate);
          return params;
      }()) {}

PeerCore::~PeerCore() = default;

void PeerCore::start() {
    const Config& config = *m_parts.config;
    m_bin = ElementRef::sink(gst_bin_new(("peer-" + m_id).c_str()));
    m_webrtc = ElementRef::borrow(make("webrtcbin"));
    gst_bin_add(GST_BIN(m_bin.get()), m_webrtc.get());
    g_object_set(m_webrtc.get(), "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency",
                 config.jitterLatencyMs, nullptr);
    configureIce(m_webrtc.get(), config, iceAddresses(config));
    // No retransmission request for a packet before a later one shows it is
    // missing. By default (rtx-next-seqnum) the jitter buffer expects each
    // next packet one frame after the last and, when a sender pauses (its
    // send-size says it is not shown), gives that packet up as lost: the key
    // frame it resumes with then arrives "too late, already popped" and is
    // dropped, and its picture waits for a PLI round trip (~300-800 ms more
    // in the [appear] test; seen in rtpjitterbuffer's log). Losses between
    // packets are still asked for (NACK).
    if (auto rtpbin = ElementRef::adopt(gst_bin_get_by_name(GST_BIN(m_webrtc.get()), "rtpbin"))) {
        g_signal_connect(rtpbin.get(), "new-jitterbuffer",
                         G_CALLBACK(+[](GstElement*, GstElement* jitterBuffer, guint, guint, gpointer) noexcept {
                             // Thread: streaming (the first packet of an SSRC).
                             g_object_set(jitterBuffer, "rtx-next-seqnum", FALSE, nullptr);
                         }),
                         nullptr);
    }

    auto self = shared_from_this();
    auto connect = [&](const char* signal, GCallback cb) {
        // Thunks get a heap weak pointer that lives as long as the handler.
        gulong id = g_signal_connect_data(m_webrtc.get(), signal, cb, newWeak(self), freeWeak, GConnectFlags(0));
        m_signals.emplace_back(m_webrtc.get(), id);
    };
    connect("pad-added", G_CALLBACK(padAddedThunk));
    connect("on-ice-candidate", G_CALLBACK(iceCandidateThunk));
    connect("notify::connection-state", G_CALLBACK(connectionStateThunk));
    connect("notify::ice-gathering-state", G_CALLBACK(gatheringStateThunk));
    // prepare-data-channel (1.22) comes before any message can arrive, but
    // before the client's DCEP open names the channel; on-data-channel then
    // tells its label.
    connect("prepare-data-channel", G_CALLBACK(prepareChannelThunk));
    connect("on-data-channel", G_CALLBACK(dataChannelThunk));

    gst_bin_add(m_parts.pipeline, m_bin.get());
    m_room.peerStarted(m_bin.get(), self);
    gst_element_sync_state_with_parent(m_bin.get());

    // Without a local address ICE offers no candidate and the client would
    // wait for a connection that cannot come: say why at once.
    if (std::string why = iceProblem(config); !why.empty())
        glib::post(WeakCore(self), [why](PeerCore& core) {
            if (core.m_bin) core.fail(why);
        });
}

bool PeerCore::stopped() const {
    std::lock_guard lock(m_mutex);
    return m_stopped;
}

void PeerCore::stop() {
    std::vector<PadRef> mixerPads;
    {
        // First: a pad-added running now (under the mutex) completes before
        // this, and one after it builds nothing; what it posted for the room
        // finds m_bin gone. So the room forgets the peer for good below.
        std::lock_guard lock(m_mutex);
        if (m_stopped) return;
        m_stopped = true;
        mixerPads = std::move(m_mixerPads);
        for (auto& [label, channel] : m_channels) {
            for (auto thunk :
                 {reinterpret_cast<gpointer>(messageStringThunk), reinterpret_cast<gpointer>(messageDataThunk)})
                g_signal_handlers_disconnect_matched(channel.get(), G_SIGNAL_MATCH_FUNC, 0, 0, nullptr, thunk, nullptr);
        }
        m_channels.clear();
    }
    m_signals.clear();
    DetachPlan plan = m_room.peerStopped(m_id, m_bin.get());
    for (auto& pad : mixerPads) plan.mixers.push_back({ElementRef::adopt(gst_pad_get_parent_element(pad.get())), pad});
    if (auto old = cancelStep()) plan.tees.push_back(std::move(*old));
    if (m_videoTeePad) {
        plan.tees.push_back({std::move(m_videoTee), std::move(m_videoTeePad)});
        m_room.removeReceiver(m_tier, m_offer.cameraCodec);
    }

    // The bin may go NULL only once no tee that stays pushes into it. That
    // runs on a thread pool (runAsync): webrtcbin takes a while to reach NULL,
    // and fifteen peers leaving at once held the main loop (every room's
    // signaling and the API) for seconds. The closure holds its own
    // references; the room waits for it (plan.teardown) before it stops.
    auto teardown = [pipeline = ElementRef::borrow(GST_ELEMENT(m_parts.pipeline)), bin = m_bin, webrtc = m_webrtc,
                     mixers = std::move(plan.mixers), token = std::move(plan.teardown)]() mutable {
        gst_element_set_locked_state(bin.get(), TRUE);
        // Flushed first: a thread still pushing into webrtcbin's sinks (the
        // send queues did, when there were some) blocks there once it is PAUSED,
        // holding the stream locks that going to READY then waits for: the
        // teardown hung, and with it the main loop (a latency update waits
        // for the bin's state lock), so that SIGTERM was never handled.
        gst_element_foreach_sink_pad(
            webrtc.get(),
            [](GstElement*, GstPad* pad, gpointer) noexcept -> gboolean {
                gst_pad_send_event(pad, gst_event_new_flush_start());
                return TRUE;
            },
            nullptr);
        // And the room's mixer pads it feeds, for the same reason on its
        // receive side: its decode threads wait in an aggregator's sink pad
        // for room (the compositor slower than real time: under ASan,
        // seconds) and hold the stream locks that going to READY waits for,
        // while a latency update on the main loop waits for the bin's state
        // lock: the whole server stalled for 30 s and more ([churn] under
        // ASan, caught in gdb). The pads are released below all the same.
        for (const auto& m : mixers) gst_pad_send_event(m.pad.get(), gst_event_new_flush_start());
        gst_element_set_state(bin.get(), GST_STATE_NULL);
        for (const auto& m : mixers)
            if (m.element) gst_element_release_request_pad(m.element.get(), m.pad.get());
        gst_bin_remove(GST_BIN(pipeline.get()), bin.get());
        GST_CAT_DEBUG(tessera_media_debug, "peer bin %s removed", GST_OBJECT_NAME(bin.get()));
        mixers.clear();
        pipeline.reset();
        webrtc.reset();
        bin.reset();
        token.reset(); // last: nothing of the room is touched after this
    };
    auto finish = std::make_shared<std::function<void()>>(
        [teardown = std::move(teardown)]() mutable { runAsync(std::move(teardown)); });
    if (plan.tees.empty()) {
        (*finish)();
    } else {
        auto remaining = std::make_shared<std::atomic<int>>(static_cast<int>(plan.tees.size()));
        for (auto& tee : plan.tees) {
            GstPad* pad = tee.pad.get();
            auto* detach = new IdleDetach{std::move(tee), [remaining, finish] {
                                              if (--*remaining == 0) (*finish)();
                                          }};
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_IDLE, detachIdle, detach,
                              [](gpointer d) noexcept { delete static_cast<IdleDetach*>(d); });
        }
    }
    m_webrtc.reset();
    m_bin.reset();
}

void PeerCore::fail(const std::string& reason) {
    if (stopped()) return;
    GST_CAT_WARNING(tessera_media_debug, "peer %s failed: %s", m_id.c_str(), reason.c_str());
    m_listener.onPeerFailed(reason);
}

void PeerCore::addRemoteCandidate(const std::optional<protocol::IceCandidate>& candidate) {
    if (!m_webrtc || !candidate || candidate->candidate.empty())
        return; // end of candidates: libnice needs no signal for it
    if (candidate->candidate.find(".local ") != std::string::npos) {
        GST_CAT_INFO(tessera_media_debug,
                     "peer %s: ignoring mDNS candidate (start Chromium with "
                     "WebRtcHideLocalIpsWithMdns disabled)",
                     m_id.c_str());
        return;
    }
    guint mline = 0;
    if (candidate->sdpMLineIndex) {
        mline = *candidate->sdpMLineIndex;
    } else if (candidate->sdpMid) {
        auto it = std::find(m_mids.begin(), m_mids.end(), *candidate->sdpMid);
        if (it == m_mids.end())
            throw Error(ErrorCode::BadRequest, "candidate.sdpMid: no m-line has mid '" + *candidate->sdpMid + "'");
        mline = static_cast<guint>(it - m_mids.begin());
    }
    g_signal_emit_by_name(m_webrtc.get(), "add-ice-candidate", mline, candidate->candidate.c_str());
}

void PeerCore::onConnectionState(GstWebRTCPeerConnectionState state) {
    if (state == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED && !m_connected) {
        m_connected = true;
        GST_CAT_INFO(tessera_media_debug, "peer %s connected", m_id.c_str());
        {
            std::lock_guard lock(m_mutex);
            m_stats.connected = true;
        }
        // Nothing is encoded for a client until it can receive: a script
        // that offers and never completes ICE starts no tier encode and no
        // Opus encode (it would cost the others' CPU for nothing). Linked
        // after the answer in any case: webrtcbin 1.22 matches a transceiver
        // against the caps a linked pad already carries (e.g. sprop-stereo),
        // which can differ from the offer even where the codec is the same.
        if (!m_sending) buildSendBranches();
        // A joiner needs a key frame to start decoding the shared stream.
        if (m_videoTeePad) m_room.requestKeyFrame(m_tier, m_offer.cameraCodec, "peer " + m_id + " connected");
    } else if (state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
        fail("ICE/DTLS connection failed");
    }
}

// webrtcbin 1.22 does not restart ICE when an offer brings new credentials
// ("FIXME: deal with ICE restarts" in gstwebrtcbin.c): it only hands them to
// libnice, whose selected pair stays. The browser's new candidates are then
// checked and nominated, but libnice (0.1.21) moves to a nominated pair only
// if its priority is above the selected pair's (conn_check_update_selected_
// pair), and a browser's new host candidate has the same priority as its old
// one: we went on sending to the old port, which the browser, having moved,
// no longer reads. (It worked when the first pair had been learnt from a
// peer-reflexive check, of lower priority: hence a flaky test.) Restarting
// the stream drops the old checks and the selected pair's priority, so the
// pair the browser nominates is taken; media goes on over the old pair until
// then. Checks that arrive before the new credentials wait for them. Our own
// credentials stay, as webrtcbin's answer repeats them.
void PeerCore::restartIce(const std::string& ufrag, const std::string& pwd) {
    // max-bundle: every m-line uses the first one's transport, one ICE stream.
    GstWebRTCRTPTransceiver* first = nullptr;
    g_signal_emit_by_name(m_webrtc.get(), "get-transceiver", 0, &first);
    auto transceiver = hold(first);
    auto stream = property(property(property(property(transceiver, "sender"), "transport"), "transport"), "stream");
    auto agent = property(property(Ref<GObject>::borrow(G_OBJECT(m_webrtc.get())), "ice-agent"), "agent");
    guint streamId = 0;
    if (stream) g_object_get(stream.get(), "stream-id", &streamId, nullptr);
    if (!agent || streamId == 0) {
        GST_CAT_WARNING(tessera_media_debug, "peer %s: no ICE stream to restart", m_id.c_str());
        return;
    }
    auto* nice = NICE_AGENT(agent.get());
    gchar *ownUfrag = nullptr, *ownPwd = nullptr;
    nice_agent_get_local_credentials(nice, streamId, &ownUfrag, &ownPwd);
    GCharPtr keepUfrag(ownUfrag), keepPwd(ownPwd);
    nice_agent_restart_stream(nice, streamId);
    if (keepUfrag && keepPwd) nice_agent_set_local_credentials(nice, streamId, keepUfrag.get(), keepPwd.get());
    nice_agent_set_remote_credentials(nice, streamId, ufrag.c_str(), pwd.c_str());
    GST_CAT_INFO(tessera_media_debug, "peer %s: ICE restarted (client ufrag %s)", m_id.c_str(), ufrag.c_str());
}

// Thread: streaming.
void PeerCore::iceCandidateThunk(GstElement*, guint mline, gchar* candidate, gpointer data) noexcept {
    glib::guarded("on-ice-candidate", [&] {
        post(weakOf(data), [mline, c = std::string(candidate ? candidate : "")](PeerCore& core) {
            if (!core.m_bin) return;
            protocol::IceCandidate cand{c, std::nullopt, mline};
            if (mline < core.m_mids.size() && !core.m_mids[mline].empty()) cand.sdpMid = core.m_mids[mline];
            core.m_listener.onLocalCandidate(cand);
        });
    });
}

// Thread: streaming. Posted after the candidates gathered before it (the
// same order as the signals), so "end of candidates" comes last: a client
// that cannot trickle (WHIP) is answered once it is.
void PeerCore::gatheringStateThunk(GObject*, GParamSpec*, gpointer data) noexcept {
    glib::guarded("notify::ice-gathering-state", [&] {
        post(weakOf(data), [](PeerCore& core) {
            if (!core.m_bin) return;
            GstWebRTCICEGatheringState state;
            g_object_get(core.m_webrtc.get(), "ice-gathering-state", &state, nullptr);
            if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) core.m_listener.onLocalCandidate(std::nullopt);
        });
    });
}

// Thread: streaming. The property is read on the main thread: reading
// webrtcbin properties takes its lock (STYLE.md, Threads).
void PeerCore::connectionStateThunk(GObject*, GParamSpec*, gpointer data) noexcept {
    glib::guarded("notify::connection-state", [&] {
        post(weakOf(data), [](PeerCore& core) {
            if (!core.m_bin) return;
            GstWebRTCPeerConnectionState state;
            g_object_get(core.m_webrtc.get(), "connection-state", &state, nullptr);
            core.onConnectionState(state);
        });
    });
}

} // namespace tessera::media
