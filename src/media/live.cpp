#include "live.h"

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

LiveStream::~LiveStream() { *m_alive = false; }

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
    m_targets.emplace(target.id, std::move(branch));
    GST_CAT_INFO(tessera_media_debug, "room %s: live target %s started", m_room.name().c_str(), target.id.c_str());
}

bool LiveStream::remove(const std::string& id) {
    const auto found = m_targets.find(id);
    if (found == m_targets.end()) return false;
    retire(std::move(found->second));
    m_targets.erase(found);
    GST_CAT_INFO(tessera_media_debug, "room %s: live target %s stopped", m_room.name().c_str(), id.c_str());
    return true;
}

void LiveStream::retire(std::unique_ptr<Branch> branch) {
    Branch* raw = branch.get();
    m_retiring.push_back(std::move(branch));
    raw->remove([this, raw] {
        // Thread: main; not once this is gone (Branch::remove).
        std::erase_if(m_retiring, [raw](const auto& b) { return b.get() == raw; });
    });
}

void LiveStream::isolate() { m_encoder->isolate(); }

void LiveStream::close(std::function<void()> then) {
    for (auto& [id, branch] : m_targets) retire(std::move(branch));
    m_targets.clear();
    m_encoder->remove(std::move(then));
}

std::vector<std::pair<std::string, std::string>> LiveStream::onMessage(GstMessage* message) {
    std::vector<std::pair<std::string, std::string>> failed;
    if (GST_MESSAGE_TYPE(message) != GST_MESSAGE_ERROR) return failed;
    // A target on its way out may still report its end (a closed connection).
    for (const auto& branch : m_retiring)
        if (branch->owns(message)) return failed;
    const std::string why = errorText(message);
    dumpDot(m_room.pipeline(), "tessera-live-error-" + m_room.name());
    for (const auto& [id, branch] : m_targets) {
        if (branch->owns(message)) {
            failed.emplace_back(id, why);
            break;
        }
    }
    // Not from a target: the encoder failed, and every target with it.
    if (failed.empty())
        for (const auto& [id, branch] : m_targets) failed.emplace_back(id, "live encoder: " + why);
    for (const auto& [id, reason] : failed) remove(id);
    return failed;
}

} // namespace tessera::media
