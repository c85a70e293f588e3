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

// One tee pad to release when idle, then (optionally) EOS into the entry it fed.
struct IdleRelease {
    ElementRef tee;
    PadRef entry;
    bool eos = false;
    std::function<void()> done; // posted to the main context
};

// Thread: the tee's streaming thread, or the caller's when already idle.
GstPadProbeReturn releaseIdle(GstPad* pad, GstPadProbeInfo*, gpointer data) noexcept {
    auto* r = static_cast<IdleRelease*>(data);
    if (!r->done) return GST_PAD_PROBE_REMOVE; // ran already (an IDLE probe may fire twice while being removed)
    glib::guarded("recorder release probe", [&] {
        if (GstPad* peer = gst_pad_get_peer(pad)) {
            gst_pad_unlink(pad, peer);
            gst_object_unref(peer);
        }
        gst_element_release_request_pad(r->tee.get(), pad);
        // Only into the recorder's bin: the room's streams never see this EOS.
        if (r->eos) gst_pad_send_event(r->entry.get(), gst_event_new_eos());
        post(std::move(r->done));
        r->done = nullptr;
    });
    return GST_PAD_PROBE_REMOVE;
}

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
    m_bin = room.fragments().makeBin("record-" + request.format, false);
    gst_element_set_name(m_bin.get(), "recorder");
    // The sink's EOS reaches the bus only as a forwarded message: the room's
    // pipeline keeps its own EOS until every sink has one.
    g_object_set(m_bin.get(), "message-forward", TRUE, nullptr);
    GstBin* bin = GST_BIN(m_bin.get());
    m_sink = requireByName(bin, "sink");
    const auto& config = room.config().recording;
    g_object_set(m_sink.get(), "max-size-time", static_cast<guint64>(config.segmentSeconds) * GST_SECOND,
                 "max-size-bytes", static_cast<guint64>(config.segmentBytes), nullptr);
    g_signal_connect_data(
        m_sink.get(), "format-location", G_CALLBACK(formatLocation), new Share{m_streams},
        [](gpointer share, GClosure*) noexcept { Share::free(share); }, GConnectFlags{});

    // The gates sit after the leaky queues: what those drop while the
    // encoders start (a loaded machine) must not shift one stream's start.
    auto entry = [&](const char* name, guint64 maxTime, policy::AvCut::Stream stream) {
        GstElement* queue = gst_element_factory_make("queue", nullptr);
        g_object_set(queue, "leaky", 2 /* downstream */, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time",
                     maxTime, nullptr);
        gst_bin_add(bin, queue);
        ElementRef first = requireByName(bin, name);
        if (!gst_element_link(queue, first.get()))
            throw Error(ErrorCode::Internal,
                        "record-" + request.format + ".pipeline: name=" + name + " does not take raw " + name);
        GstPad* src = gst_element_get_static_pad(queue, "src");
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, gateThunk, new Share{m_streams, stream}, Share::free);
        gst_object_unref(src);
        GstPad* sink = gst_element_get_static_pad(queue, "sink");
        PadRef ghost = PadRef::borrow(ghostPad(m_bin.get(), sink, true));
        gst_object_unref(sink);
        return ghost;
    };
    m_videoEntry = entry("video", kVideoQueueNs, policy::AvCut::Video);
    m_audioEntry = entry("audio", kAudioQueueNs, policy::AvCut::Audio);

    // The spans of what enters, for the reported duration and the log.
    GstPad* muxVideo = gst_element_get_static_pad(m_sink.get(), "video");
    if (!muxVideo)
        throw Error(ErrorCode::Internal, "record-" + request.format + ".pipeline: name=sink has no video pad linked");
    gst_pad_add_probe(muxVideo, GST_PAD_PROBE_TYPE_BUFFER, trackSpan, new Share{m_streams}, Share::free);
    gst_object_unref(muxVideo);

    gst_bin_add(room.pipeline(), m_bin.get());
    if (gst_element_sync_state_with_parent(m_bin.get()) == GST_STATE_CHANGE_FAILURE) {
        gst_element_set_state(m_bin.get(), GST_STATE_NULL);
        gst_bin_remove(room.pipeline(), m_bin.get());
        m_bin.reset();
        throw Error(ErrorCode::Internal, "the recorder could not start (see the log)");
    }
    m_videoTeePad = PadRef::adopt(gst_element_request_pad_simple(room.rawVideoTee(), "src_%u"));
    m_audioTeePad = PadRef::adopt(gst_element_request_pad_simple(room.fullMixTee(), "src_%u"));
    if (gst_pad_link(m_videoTeePad.get(), m_videoEntry.get()) != GST_PAD_LINK_OK ||
        gst_pad_link(m_audioTeePad.get(), m_audioEntry.get()) != GST_PAD_LINK_OK) {
        GST_CAT_ERROR(tessera_media_debug, "room %s: cannot link the recorder", room.name().c_str());
    }
    GST_CAT_INFO(tessera_media_debug, "room %s: recording to %s", room.name().c_str(), m_firstFile.c_str());
}

Recorder::~Recorder() {
    *m_alive = false;
    if (m_released) return;
    // The room's pipeline stopped while this recorded or drained: no tee
    // pushes any more, so its pads go at once.
    if (!m_detached) {
        for (auto [tee, pad] : {std::pair{m_room.rawVideoTee(), m_videoTeePad}, {m_room.fullMixTee(), m_audioTeePad}}) {
            if (!pad) continue;
            if (GstPad* peer = gst_pad_get_peer(pad.get())) {
                gst_pad_unlink(pad.get(), peer);
                gst_object_unref(peer);
            }
            gst_element_release_request_pad(tee, pad.get());
        }
    }
    release([] {});
}

void Recorder::isolate() {
    if (!m_released) gst_element_set_locked_state(m_bin.get(), TRUE);
}

bool Recorder::owns(GstMessage* message) const {
    return m_bin && (GST_MESSAGE_SRC(message) == GST_OBJECT(m_bin.get()) ||
                     gst_object_has_as_ancestor(GST_MESSAGE_SRC(message), GST_OBJECT(m_bin.get())));
}

void Recorder::detach(bool eos, std::function<void()> then) {
    if (m_detached || m_detaching) {
        post(std::move(then));
        return;
    }
    m_detaching = true;
    // `then` runs once, after the second pad is released.
    auto remaining = std::make_shared<int>(2);
    auto done = [alive = std::weak_ptr<bool>(m_alive), this, remaining, then = std::move(then)] {
        if (!alive.lock() || --*remaining > 0) return;
        m_detached = true;
        then();
    };
    for (auto [tee, pad, entry] : {std::tuple{m_room.rawVideoTee(), m_videoTeePad, m_videoEntry},
                                   {m_room.fullMixTee(), m_audioTeePad, m_audioEntry}}) {
        auto* release = new IdleRelease{ElementRef::borrow(tee), entry, eos, done};
        gst_pad_add_probe(pad.get(), GST_PAD_PROBE_TYPE_IDLE, releaseIdle, release,
                          [](gpointer data) noexcept { delete static_cast<IdleRelease*>(data); });
    }
}

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
        detach(true, [] {});
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
            if (alive.lock()) detach(true, [] {}); // a stream never got there: end as it is
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
                if (alive.lock()) recorder->detach(true, [] {});
            });
        }
        return GST_PAD_PROBE_DROP;
    }
    return GST_PAD_PROBE_DROP;
}

bool Recorder::eosReached(GstMessage* message) const {
    if (GST_MESSAGE_TYPE(message) != GST_MESSAGE_ELEMENT || !gst_message_has_name(message, "GstBinForwarded"))
        return false;
    GstMessage* inner = nullptr;
    gst_structure_get(gst_message_get_structure(message), "message", GST_TYPE_MESSAGE, &inner, nullptr);
    if (!inner) return false;
    const bool eos = GST_MESSAGE_TYPE(inner) == GST_MESSAGE_EOS && GST_MESSAGE_SRC(inner) == GST_OBJECT(m_sink.get());
    gst_message_unref(inner);
    return eos;
}

void Recorder::remove(std::function<void()> then) {
    detach(false, [this, then = std::move(then)]() mutable {
        release([alive = std::weak_ptr<bool>(m_alive), then = std::move(then)] {
            if (alive.lock()) then();
        });
    });
}

void Recorder::release(std::function<void()> then) {
    // Removing does not wait for the bin's streaming threads (it only unlinks
    // and unparents); going NULL does, for a write in progress. That is left
    // to a pool thread, which a write the file system never returns blocks
    // for good: the room and the process go on and exit without it.
    m_released = true;
    gst_bin_remove(m_room.pipeline(), m_bin.get());
    runAsync([bin = m_bin, then = std::move(then)] {
        gst_element_set_state(bin.get(), GST_STATE_NULL);
        post(then);
    });
}

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
