#include "recorder.h"

#include <algorithm>
#include <cstdio>

#include "room_pipeline.h"
#include "tessera/protocol/error.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
namespace {

// Raw frames waiting for the recorder's encoder before the oldest is
// dropped: a slow recorder loses frames, it never stalls the room's tees.
constexpr guint64 kVideoQueueNs = 500 * GST_MSECOND;
constexpr guint64 kAudioQueueNs = 2 * GST_SECOND;
// How long a stop waits for the stream that lags to reach the cut.
constexpr guint kCutWaitMs = 3000;

} // namespace

// An entry pad's probe data, or (no stream) the muxer pad's and the sink's
// signal's: each holds the streams as long as its pad or element lives.
struct Recorder::Share {
    std::shared_ptr<Streams> streams;
    policy::AvCut::Stream stream = policy::AvCut::Video;
    static void free(gpointer share) noexcept { delete static_cast<Share*>(share); }
};

Recorder::Recorder(RoomPipeline& room, const RecordingRequest& request)
    : m_room(room), m_streams(std::make_shared<Streams>()) {
    if (!isRecordingFormat(request.format))
        throw Error(ErrorCode::BadRequest, "format: must be \"mkv\", \"webm\" or \"mp4\"");
    m_streams->directory = request.directory;
    m_streams->stem = request.stem;
    m_streams->extension = request.format;
    m_streams->segmented = room.config().recording.segmentSeconds > 0 || room.config().recording.segmentBytes > 0;
    m_streams->alive = m_alive;
    m_streams->recorder = this;
    m_firstFile = m_streams->segmentPath(0);
    ElementRef bin = room.fragments().makeBin("record-" + request.format, false);
    gst_element_set_name(bin.get(), "recorder");
    m_sink = requireByName(GST_BIN(bin.get()), "sink");
    const auto& config = room.config().recording;
    g_object_set(m_sink.get(), "max-size-time", static_cast<guint64>(config.segmentSeconds) * GST_SECOND,
                 "max-size-bytes", static_cast<guint64>(config.segmentBytes), nullptr);
    g_signal_connect_data(
        m_sink.get(), "format-location", G_CALLBACK(formatLocation), new Share{m_streams},
        [](gpointer share, GClosure*) noexcept { Share::free(share); }, GConnectFlags{});
    m_branch = std::make_unique<Branch>(room.pipeline(), std::move(bin));

    // The gates sit after the leaky queues: what those drop while the
    // encoders start (a loaded machine) must not shift one stream's start.
    const std::string what = "record-" + request.format + ".pipeline";
    for (auto [tee, name, maxTime, stream] :
         {std::tuple{room.rawVideoTee(), "video", kVideoQueueNs, policy::AvCut::Video},
          {room.fullMixTee(), "audio", kAudioQueueNs, policy::AvCut::Audio}}) {
        GstPad* src = m_branch->addInput(tee, name, maxTime, what);
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, gateThunk, new Share{m_streams, stream}, Share::free);
    }

    // The spans of what enters, for the reported duration and the log.
    GstPad* muxVideo = gst_element_get_static_pad(m_sink.get(), "video");
    if (!muxVideo) throw Error(ErrorCode::Internal, what + ": name=sink has no video pad linked");
    gst_pad_add_probe(muxVideo, GST_PAD_PROBE_TYPE_BUFFER, trackSpan, new Share{m_streams}, Share::free);
    gst_object_unref(muxVideo);

    m_branch->start();
    GST_CAT_INFO(tessera_media_debug, "room %s: recording to %s", room.name().c_str(), m_firstFile.c_str());
}

Recorder::~Recorder() { *m_alive = false; }

void Recorder::isolate() { m_branch->isolate(); }

bool Recorder::owns(GstMessage* message) const { return m_branch->owns(message); }

void Recorder::stop() {
    m_stopping = true;
    bool cut = false;
    {
        // Both streams end at the same running time, past what either has
        // shown; the one behind (the compositor lags under load) is detached
        // once it gets there.
        std::lock_guard lock(m_streams->cutMutex);
        cut = m_streams->cut.stop();
    }
    if (!cut) {
        m_branch->detach(true, [] {});
        return;
    }
    g_timeout_add_full(
        G_PRIORITY_DEFAULT, kCutWaitMs,
        [](gpointer data) noexcept -> gboolean {
            // Thread: main.
            glib::guarded("recorder cut timeout", *static_cast<std::function<void()>*>(data));
            return G_SOURCE_REMOVE;
        },
        new std::function<void()>([alive = std::weak_ptr<bool>(m_alive), this] {
            if (alive.lock()) m_branch->detach(true, [] {}); // a stream never got there: end as it is
        }),
        [](gpointer data) noexcept { delete static_cast<std::function<void()>*>(data); });
}

// Thread: an entry queue's streaming thread (one per stream).
GstPadProbeReturn Recorder::gateThunk(GstPad* pad, GstPadProbeInfo* info, gpointer data) noexcept {
    auto* gate = static_cast<Share*>(data);
    GstPadProbeReturn result = GST_PAD_PROBE_OK;
    glib::guarded("recorder gate",
                  [&] { result = gate->streams->gate(gate->stream, pad, GST_PAD_PROBE_INFO_BUFFER(info)); });
    return result;
}

GstPadProbeReturn Recorder::Streams::gate(policy::AvCut::Stream stream, GstPad* pad, GstBuffer* buffer) {
    // Running time, not timestamps: the compositor and the audio mixer have
    // segments of their own (start-time-selection=first).
    const GstClockTime pts = runningTime(pad, GST_BUFFER_PTS(buffer));
    if (!GST_CLOCK_TIME_IS_VALID(pts)) return GST_PAD_PROBE_OK;
    const GstClockTime duration = GST_BUFFER_DURATION_IS_VALID(buffer) ? GST_BUFFER_DURATION(buffer) : 0;
    std::lock_guard lock(cutMutex);
    switch (cut.admit(stream, pts, duration)) {
    case policy::AvCut::Verdict::Pass: return GST_PAD_PROBE_OK;
    case policy::AvCut::Verdict::Drop:
    case policy::AvCut::Verdict::After: return GST_PAD_PROBE_DROP;
    case policy::AvCut::Verdict::Reached:
        if (cut.done()) {
            post([alive = alive, recorder = recorder] {
                if (alive.lock()) recorder->m_branch->detach(true, [] {});
            });
        }
        return GST_PAD_PROBE_DROP;
    }
    return GST_PAD_PROBE_DROP;
}

bool Recorder::eosReached(GstMessage* message) const { return m_branch->forwardedEos(message, m_sink.get()); }

void Recorder::remove(std::function<void()> then) { m_branch->remove(std::move(then)); }

double Recorder::duration() const {
    auto seconds = [](std::optional<std::uint64_t> t) { return t ? static_cast<double>(*t) / GST_SECOND : -1.0; };
    {
        std::lock_guard lock(m_streams->cutMutex);
        const policy::AvCut& cut = m_streams->cut;
        GST_CAT_INFO(tessera_media_debug,
                     "room %s: recorded %.3f-%.3f s (running time); video ends at %.3f, audio at %.3f",
                     m_room.name().c_str(), seconds(cut.start()), seconds(cut.end()),
                     seconds(cut.last(policy::AvCut::Video)), seconds(cut.last(policy::AvCut::Audio)));
    }
    const Span& written = m_streams->written;
    std::lock_guard lock(written.mutex);
    if (!GST_CLOCK_TIME_IS_VALID(written.first) || !GST_CLOCK_TIME_IS_VALID(written.end)) return 0;
    return static_cast<double>(written.end - written.first) / GST_SECOND;
}

double Recorder::offsetOf(GstClockTime runningTime) const {
    std::lock_guard lock(m_streams->cutMutex);
    const auto start = m_streams->cut.start();
    if (!GST_CLOCK_TIME_IS_VALID(runningTime) || !start || runningTime < *start) return 0;
    return static_cast<double>(runningTime - *start) / GST_SECOND;
}

bool Recorder::wroteVideo() const {
    std::lock_guard lock(m_streams->written.mutex);
    return GST_CLOCK_TIME_IS_VALID(m_streams->written.first);
}

// Thread: a recorder streaming thread.
GstPadProbeReturn Recorder::trackSpan(GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
    Span* span = &static_cast<Share*>(data)->streams->written;
    GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    const GstClockTime pts = GST_BUFFER_PTS(buffer);
    if (!GST_CLOCK_TIME_IS_VALID(pts)) return GST_PAD_PROBE_OK;
    const GstClockTime end = pts + (GST_BUFFER_DURATION_IS_VALID(buffer) ? GST_BUFFER_DURATION(buffer) : 0);
    glib::guarded("recorder span probe", [&] {
        std::lock_guard lock(span->mutex);
        if (!GST_CLOCK_TIME_IS_VALID(span->first) || pts < span->first) span->first = pts;
        if (!GST_CLOCK_TIME_IS_VALID(span->end) || end > span->end) span->end = end;
    });
    return GST_PAD_PROBE_OK;
}

std::string Recorder::Streams::segmentPath(guint fragment) const {
    if (!segmented) return directory + "/" + stem + "." + extension;
    char index[16];
    std::snprintf(index, sizeof index, "-%05u.", fragment);
    return directory + "/" + stem + index + extension;
}

// Thread: the recorder's streaming thread. Only what was set before the bin started.
gchar* Recorder::formatLocation(GstElement*, guint fragment, gpointer share) noexcept {
    gchar* path = nullptr;
    glib::guarded("format-location",
                  [&] { path = g_strdup(static_cast<Share*>(share)->streams->segmentPath(fragment).c_str()); });
    return path;
}

} // namespace tessera::media
