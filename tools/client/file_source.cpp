#include "file_source.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <pthread.h>

#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

#include "tessera/glib/raii.h"

namespace tessera::client {

using glib::ElementRef;
using glib::GErrorPtr;
using glib::PadRef;
using glib::Ref;

struct FileSource::Outlet {
    ElementRef pipeline;                 // the session's: its base time stamps what it is sent
    PadRef video;                        // ours, linked to its video payloader; null: audio only
    PadRef audio;                        // ours, linked to its audio payloader
    std::atomic<bool> live{false};       // started and not detached
    std::atomic<bool> videoActive{true}; // the server wants its video (send-size)
    std::atomic<bool> waitKey{true};     // its video (re)starts on a key frame
};

std::shared_ptr<FileSource> FileSource::load(const std::string& path, bool audioOnly) {
    std::shared_ptr<FileSource> source(new FileSource());
    if (!source->read(path, audioOnly)) return nullptr;
    source->m_thread = std::thread([self = source.get()] {
        pthread_setname_np(pthread_self(), "file-pump"); // apart from the main thread in per-thread CPU
        glib::guarded("file pump", [self] { self->pump(); });
    });
    return source;
}

FileSource::~FileSource() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable()) m_thread.join();
}

// Demuxed, still encoded. The queues are unbounded: one sink is drained to
// its end before the other.
bool FileSource::read(const std::string& path, bool audioOnly) {
    GError* error = nullptr;
    auto reader = ElementRef::sink(gst_parse_launch(
        "filesrc name=src ! matroskademux name=demux "
        "demux.video_0 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! appsink name=video sync=false "
        "demux.audio_0 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! appsink name=audio sync=false",
        &error));
    GErrorPtr owned(error);
    if (!reader || error) {
        std::fprintf(stderr, "tessera-client: cannot build the file reader: %s\n", error ? error->message : "?");
        return false;
    }
    auto src = ElementRef::adopt(gst_bin_get_by_name(GST_BIN(reader.get()), "src"));
    g_object_set(src.get(), "location", path.c_str(), nullptr); // a property, not parsed text
    gst_element_set_state(reader.get(), GST_STATE_PLAYING);
    bool ok = true;
    for (auto [name, track] : {std::pair{"video", &m_video}, std::pair{"audio", &m_audio}}) {
        auto sink = ElementRef::adopt(gst_bin_get_by_name(GST_BIN(reader.get()), name));
        while (glib::SamplePtr sample{gst_app_sink_try_pull_sample(GST_APP_SINK(sink.get()), 10 * GST_SECOND)}) {
            if (!track->caps) track->caps.reset(gst_caps_copy(gst_sample_get_caps(sample.get())));
            GstBuffer* buffer = gst_sample_get_buffer(sample.get());
            track->buffers.emplace_back(gst_buffer_ref(buffer));
            track->key.push_back(!GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT));
            if (!track->duration && GST_BUFFER_DURATION_IS_VALID(buffer)) track->duration = GST_BUFFER_DURATION(buffer);
        }
        if (track == &m_video && audioOnly) {
            *track = EncodedTrack{};
            continue;
        }
        if (track->buffers.empty() || !track->key.front()) {
            std::fprintf(stderr, "tessera-client: %s has no %s track starting with a key frame (VP8 + Opus Matroska)\n",
                         path.c_str(), name);
            ok = false;
        }
    }
    gst_element_set_state(reader.get(), GST_STATE_NULL);
    if (!ok) return false;
    if (!m_video.duration && m_video.caps) {
        const GstStructure* s = gst_caps_get_structure(m_video.caps.get(), 0);
        gint num = 0, den = 1;
        m_video.duration = gst_structure_get_fraction(s, "framerate", &num, &den) && num > 0
                               ? gst_util_uint64_scale(GST_SECOND, static_cast<guint64>(den), static_cast<guint64>(num))
                               : GST_SECOND / 30;
    }
    if (!m_audio.duration) m_audio.duration = 20 * GST_MSECOND;
    return true;
}

// Thread: streaming (a payloader's, upstream). A key-frame request (PLI/FIR
// from the server) reached the pre-encoded video: every session jumps to
// the file's next key frame, which any decoder can start from. Nothing
// here can throw.
gboolean FileSource::onUpstreamEvent(GstPad* pad, GstObject*, GstEvent* event) noexcept {
    if (gst_video_event_is_force_key_unit(event))
        static_cast<FileSource*>(gst_pad_get_element_private(pad))->m_wantKeyFrame = true;
    gst_event_unref(event);
    return TRUE;
}

FileSource::Outlet* FileSource::attach(GstElement* pipeline, GstPad* videoSink, GstPad* audioSink) {
    static std::atomic<unsigned> streams{0};
    auto outlet = std::make_shared<Outlet>();
    outlet->pipeline = ElementRef::borrow(pipeline);
    for (auto [sink, pad, track] :
         {std::tuple{videoSink, &outlet->video, &m_video}, std::tuple{audioSink, &outlet->audio, &m_audio}}) {
        if (!sink) continue;
        *pad = PadRef::sink(gst_pad_new(nullptr, GST_PAD_SRC));
        gst_pad_set_element_private(pad->get(), this);
        gst_pad_set_event_function(pad->get(), onUpstreamEvent);
        gst_pad_set_active(pad->get(), TRUE);
        gst_pad_link(pad->get(), sink);
        // Sticky: stored on our pad now, sent ahead of its first buffer.
        const std::string id = "tessera-client/file/" + std::to_string(streams++);
        gst_pad_push_event(pad->get(), gst_event_new_stream_start(id.c_str()));
        gst_pad_push_event(pad->get(), gst_event_new_caps(track->caps.get()));
        GstSegment segment;
        gst_segment_init(&segment, GST_FORMAT_TIME);
        gst_pad_push_event(pad->get(), gst_event_new_segment(&segment));
    }
    std::lock_guard lock(m_mutex);
    m_outlets.push_back(std::move(outlet));
    return m_outlets.back().get();
}

void FileSource::start(Outlet* outlet) {
    {
        std::lock_guard lock(m_mutex);
        outlet->live = true;
    }
    m_wantKeyFrame = true;
    m_wake.notify_all();
}

void FileSource::setVideoActive(Outlet* outlet, bool active) {
    if (active && !outlet->videoActive) {
        outlet->waitKey = true; // before the pump sees it active
        // The server asks for a key frame too, but only once it sees the
        // stream again: jumping now starts it a second sooner.
        m_wantKeyFrame = true;
    }
    outlet->videoActive = active;
}

// The pump may be pushing to it right now, from its copy of the list: that
// push ends with the pipeline's shutdown (flushing), and the copy keeps the
// pads alive until then.
void FileSource::detach(Outlet* outlet) {
    std::shared_ptr<Outlet> gone;
    {
        std::lock_guard lock(m_mutex);
        const auto it =
            std::find_if(m_outlets.begin(), m_outlets.end(), [&](const auto& o) { return o.get() == outlet; });
        if (it == m_outlets.end()) return;
        gone = std::move(*it);
        m_outlets.erase(it);
    }
    gone->live = false;
    for (GstPad* pad : {gone->video.get(), gone->audio.get()}) {
        if (!pad) continue;
        if (auto peer = PadRef::adopt(gst_pad_get_peer(pad))) gst_pad_unlink(pad, peer.get());
        gst_pad_set_active(pad, FALSE);
    }
}

// Pushes the tracks' buffers at their real-time pace, looped, to every live
// outlet, stamped on an ideal schedule of the system clock (every session
// pipeline's clock) from the moment the first outlet went live: the
// payloaders then write steady RTP timestamps whatever this thread's
// wake-up jitter. Idle (no live outlet), it sleeps.
void FileSource::pump() {
    using namespace std::chrono;
    const auto clock = Ref<GstClock>::adopt(gst_system_clock_obtain());
    std::size_t vi = 0, ai = 0;
    std::uint64_t vn = 0, an = 0; // buffers pushed since origin
    bool running = false;
    GstClockTime originClock = 0;
    steady_clock::time_point origin;
    const auto at = [&](std::uint64_t n, GstClockTime d) {
        return origin + nanoseconds(static_cast<std::int64_t>(n * d));
    };
    // A copy of `buffer` for `outlet` (the memory is shared), stamped with
    // the running time in its pipeline at which the schedule's `n`-th buffer
    // is due; nullptr if its pipeline started after that.
    const auto stamped = [&](const Outlet& outlet, GstBuffer* buffer, std::uint64_t n, GstClockTime d) -> GstBuffer* {
        const GstClockTime due = originClock + n * d;
        const GstClockTime base = gst_element_get_base_time(outlet.pipeline.get());
        if (due < base) return nullptr;
        GstBuffer* b = gst_buffer_copy(buffer);
        GST_BUFFER_PTS(b) = GST_BUFFER_DTS(b) = due - base;
        GST_BUFFER_DURATION(b) = d;
        return b;
    };
    std::unique_lock lock(m_mutex);
    while (!m_stop) {
        if (std::none_of(m_outlets.begin(), m_outlets.end(), [](const auto& o) { return o->live.load(); })) {
            running = false;
            m_wake.wait(lock);
            continue;
        }
        if (!running) {
            running = true;
            origin = steady_clock::now();
            originClock = gst_clock_get_time(clock.get());
            vn = an = 0;
        }
        const bool video = !m_video.buffers.empty();
        const auto vDue = video ? at(vn, m_video.duration) : steady_clock::time_point::max();
        const auto aDue = at(an, m_audio.duration);
        if (m_wake.wait_until(lock, std::min(vDue, aDue), [this] { return m_stop; })) break;
        const auto now = steady_clock::now();
        // Pushed without the lock: a session's webrtcbin may hold a push a
        // while, and the main thread must never wait for that.
        const auto outlets = m_outlets;
        lock.unlock();
        if (video && vDue <= now) {
            if (m_wantKeyFrame.exchange(false))
                while (!m_video.key[vi]) vi = (vi + 1) % m_video.buffers.size();
            const bool key = m_video.key[vi];
            for (const auto& o : outlets) {
                if (!o->live || !o->video || !o->videoActive || (o->waitKey && !key)) continue;
                o->waitKey = false;
                if (GstBuffer* b = stamped(*o, m_video.buffers[vi].get(), vn, m_video.duration))
                    gst_pad_push(o->video.get(), b);
            }
            vi = (vi + 1) % m_video.buffers.size();
            ++vn;
        }
        if (aDue <= now) {
            for (const auto& o : outlets) {
                if (!o->live) continue;
                if (GstBuffer* b = stamped(*o, m_audio.buffers[ai].get(), an, m_audio.duration)) {
                    GST_BUFFER_FLAG_UNSET(b, GST_BUFFER_FLAG_DISCONT);
                    gst_pad_push(o->audio.get(), b);
                }
            }
            ai = (ai + 1) % m_audio.buffers.size();
            ++an;
        }
        lock.lock();
    }
}

} // namespace tessera::client
