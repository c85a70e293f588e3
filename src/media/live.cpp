#include "live.h"

#include <algorithm>

#include <gst/video/video.h>

#include "room_pipeline.h"
#include "tessera/protocol/error.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
namespace {

// Raw media waiting for the live encoder before the oldest is dropped, as
// the recorder's: a slow encoder loses frames, it never stalls the room.
constexpr guint64 kRawVideoQueueNs = 500 * GST_MSECOND;
constexpr guint64 kRawAudioQueueNs = 2 * GST_SECOND;
// Encoded media waiting for one target (a slow network) before its oldest is
// dropped: that target's picture breaks up until the next key frame; the
// encoder and the other targets never wait for it.
constexpr guint64 kTargetQueueNs = 3 * GST_SECOND;
// How long a stopped target may take to end its stream (EOS through its
// queue, muxer and sink: the last HLS segment, a flush to the RTMP server)
// before it is taken out as it is.
constexpr guint kDrainMs = 5000;

// Thread: the target's video entry queue. A target starts at a key frame:
// what comes before it cannot be decoded.
GstPadProbeReturn dropToKeyFrame(GstPad*, GstPadProbeInfo* info, gpointer) noexcept {
    if (GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_DELTA_UNIT)) return GST_PAD_PROBE_DROP;
    return GST_PAD_PROBE_REMOVE;
}

// An error message as "element: message".
std::string errorText(GstMessage* message) {
    GError* raw = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(message, &raw, &debug);
    GErrorPtr err(raw);
    GCharPtr dbg(debug);
    GST_CAT_WARNING(tessera_media_debug, "live: %s: %s (%s)", GST_OBJECT_NAME(GST_MESSAGE_SRC(message)),
                    err ? err->message : "error", dbg ? dbg.get() : "");
    return std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(message))) + ": " + (err ? err->message : "error");
}

} // namespace

LiveStream::LiveStream(RoomPipeline& room) : m_room(room) {
    static unsigned counter = 0;
    ElementRef bin = room.fragments().makeBin("live-encode", false);
    gst_element_set_name(bin.get(), ("live-" + std::to_string(counter++)).c_str());
    m_videoOut = requireByName(GST_BIN(bin.get()), "video_out");
    m_audioOut = requireByName(GST_BIN(bin.get()), "audio_out");
    // Targets come and go (and fail): the encoder goes on without any.
    for (GstElement* tee : {m_videoOut.get(), m_audioOut.get()})
        if (g_object_class_find_property(G_OBJECT_GET_CLASS(tee), "allow-not-linked"))
            g_object_set(tee, "allow-not-linked", TRUE, nullptr);
    m_encoder = std::make_unique<Branch>(room.pipeline(), std::move(bin));
    m_encoder->addInput(room.rawVideoTee(), "video", kRawVideoQueueNs, "live-encode.pipeline");
    m_encoder->addInput(room.fullMixTee(), "audio", kRawAudioQueueNs, "live-encode.pipeline");
    m_encoder->start();
    GST_CAT_INFO(tessera_media_debug, "room %s: live encoder started", room.name().c_str());
}

LiveStream::~LiveStream() {
    *m_alive = false;
    for (const auto& r : m_retiring)
        if (r->timer) g_source_remove(r->timer);
}

void LiveStream::add(const LiveTarget& target) {
    if (m_targets.contains(target.id))
        throw Error(ErrorCode::Conflict, "live target '" + target.id + "' is running already");
    const bool hls = target.kind == LiveTarget::Kind::Hls;
    const std::string fragment = hls ? "live-hls" : "live-rtmp";
    ElementRef bin = m_room.fragments().makeBin(fragment, false);
    // Unique: a reconnecting target's previous bin may still be on its way out.
    static unsigned counter = 0;
    gst_element_set_name(bin.get(), ("live-" + target.id + "-" + std::to_string(counter++)).c_str());
    // Each target goes to PLAYING on its own: a sink's preroll (hlssink2's)
    // stays inside the target. Without this, another target's error during
    // that preroll (a refused connection, within milliseconds) failed the
    // encoder bin's pending state change, and every target's sink then
    // waited in preroll for good: nothing was written or sent.
    g_object_set(bin.get(), "async-handling", TRUE, nullptr);
    ElementRef sink = requireByName(GST_BIN(bin.get()), "sink");
    if (hls) {
        // Names the server serves (server/live.cpp accepts only these).
        g_object_set(sink.get(), "location", (target.directory + "/segment%05d.ts").c_str(), "playlist-location",
                     (target.directory + "/index.m3u8").c_str(), nullptr);
    } else {
        g_object_set(sink.get(), "location", target.url.c_str(), nullptr);
    }
    auto branch = std::make_unique<Branch>(GST_BIN(m_encoder->bin()), std::move(bin));
    GstPad* video = branch->addInput(m_videoOut.get(), "video", kTargetQueueNs, fragment + ".pipeline");
    gst_pad_add_probe(video, GST_PAD_PROBE_TYPE_BUFFER, dropToKeyFrame, nullptr, nullptr);
    branch->addInput(m_audioOut.get(), "audio", kTargetQueueNs, fragment + ".pipeline");
    branch->start();
    // The shared encoder makes a key frame now rather than at its next
    // interval: the new target starts at once.
    gst_pad_send_event(branch->teePad(0), gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    m_targets.emplace(target.id, Target{std::move(branch), std::move(sink)});
    GST_CAT_INFO(tessera_media_debug, "room %s: live target %s started", m_room.name().c_str(), target.id.c_str());
}

bool LiveStream::remove(const std::string& id, bool drain) {
    // Extracted: `id` may be the key itself (close()).
    auto node = m_targets.extract(id);
    if (node.empty()) return false;
    GST_CAT_INFO(tessera_media_debug, "room %s: live target %s stopped%s", m_room.name().c_str(), node.key().c_str(),
                 drain ? ", ending its stream" : "");
    retire(node.key(), std::move(node.mapped()), drain);
    return true;
}

void LiveStream::retire(const std::string& id, Target target, bool drain) {
    m_retiring.push_back(std::make_unique<Retiring>(Retiring{id, std::move(target), 0, drain}));
    Retiring* raw = m_retiring.back().get();
    if (!drain) {
        drained(raw);
        return;
    }
    // The EOS follows the last buffer each tee pushed to the target; its
    // sink's EOS (onMessage) says the stream is complete.
    raw->target.branch->detach(true, [] {});
    raw->timer = g_timeout_add_full(
        G_PRIORITY_DEFAULT, kDrainMs,
        [](gpointer data) noexcept -> gboolean {
            // Thread: main.
            glib::guarded("live drain timeout", *static_cast<std::function<void()>*>(data));
            return G_SOURCE_REMOVE;
        },
        new std::function<void()>([this, raw] {
            // Removed with the target or this (the destructor): both still here.
            raw->timer = 0;
            GST_CAT_WARNING(tessera_media_debug,
                            "room %s: live target %s did not end its stream within %u ms; taken out as it is",
                            m_room.name().c_str(), raw->id.c_str(), kDrainMs);
            drained(raw);
        }),
        [](gpointer data) noexcept { delete static_cast<std::function<void()>*>(data); });
}

void LiveStream::drained(Retiring* retiring) {
    if (retiring->timer) g_source_remove(retiring->timer);
    retiring->timer = 0;
    retiring->draining = false;
    retiring->target.branch->remove([this, retiring] {
        // Thread: main; not once the branch is gone (Branch::remove), which this outlives.
        std::erase_if(m_retiring, [retiring](const auto& r) { return r.get() == retiring; });
    });
    closeIfDrained();
}

void LiveStream::isolate() { m_encoder->isolate(); }

void LiveStream::close(std::function<void()> then) {
    while (!m_targets.empty()) remove(m_targets.begin()->first);
    m_closing = true;
    m_closed = std::move(then);
    closeIfDrained();
}

void LiveStream::closeIfDrained() {
    if (!m_closing || std::any_of(m_retiring.begin(), m_retiring.end(), [](const auto& r) { return r->draining; }))
        return;
    m_closing = false;
    m_encoder->remove(std::move(m_closed));
}

std::vector<std::pair<std::string, std::string>> LiveStream::onMessage(GstMessage* message) {
    std::vector<std::pair<std::string, std::string>> failed;
    for (const auto& r : m_retiring) {
        if (!r->target.branch->owns(message)) continue;
        // A draining target's sink ended its stream, or failed to (it will
        // not end it then); anything else from a target on its way out (a
        // closed connection) is its end, not a failure.
        if (r->draining && r->target.branch->forwardedEos(message, r->target.sink.get())) {
            GST_CAT_INFO(tessera_media_debug, "room %s: live target %s ended its stream", m_room.name().c_str(),
                         r->id.c_str());
            drained(r.get());
        } else if (r->draining && GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
            errorText(message); // logs it
            drained(r.get());
        }
        return failed;
    }
    if (GST_MESSAGE_TYPE(message) != GST_MESSAGE_ERROR) return failed;
    const std::string why = errorText(message);
    dumpDot(m_room.pipeline(), "tessera-live-error-" + m_room.name());
    for (const auto& [id, target] : m_targets) {
        if (target.branch->owns(message)) {
            failed.emplace_back(id, why);
            break;
        }
    }
    // Not from a target: the encoder failed, and every target with it.
    if (failed.empty())
        for (const auto& [id, target] : m_targets) failed.emplace_back(id, "live encoder: " + why);
    // A failed target's stream cannot end: it goes as it is.
    for (const auto& [id, reason] : failed) remove(id, false);
    return failed;
}

} // namespace tessera::media
