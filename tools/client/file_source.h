#pragma once
// tessera-client --send-file: the file's encoded tracks, read once into
// memory and pushed in real time, looped, by one thread to the payloaders
// of every session of the process (--count). Sessions share the read, the
// schedule and the position in the file: no demuxer, appsrc or pump thread
// per session, only their own payloaders (own SSRCs) and webrtcbin.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gst/gst.h>

#include "tessera/glib/gst_raii.h"

namespace tessera::client {

// One encoded track of the file.
struct EncodedTrack {
    glib::CapsPtr caps;
    std::vector<glib::BufferPtr> buffers;
    std::vector<bool> key;
    GstClockTime duration = 0; // per buffer
};

class FileSource {
public:
    // Reads the whole file (demuxed, still encoded); nullptr on failure,
    // reported on stderr. `audioOnly`: the video track is not needed.
    static std::shared_ptr<FileSource> load(const std::string& path, bool audioOnly);
    FileSource(const FileSource&) = delete;
    FileSource& operator=(const FileSource&) = delete;
    ~FileSource();

    const EncodedTrack& video() const { return m_video; }
    const EncodedTrack& audio() const { return m_audio; }

    // A session's inputs: a source pad of ours linked to each of its
    // payloaders (`videoSink` may be null: audio only), in `pipeline`,
    // whose running time the buffers are stamped in. Fed once started.
    // Thread: main.
    struct Outlet;
    Outlet* attach(GstElement* pipeline, GstPad* videoSink, GstPad* audioSink);
    // Its descriptions are set (webrtcbin holds a sink pad's data until
    // then): buffers flow from the next one on, starting with a key frame.
    void start(Outlet* outlet);
    // The server's send-size `active` for its camera: while off, its video
    // is not pushed; back on, it restarts at the file's next key frame.
    void setVideoActive(Outlet* outlet, bool active);
    // Stops feeding it, before its pipeline stops; `outlet` is gone after.
    void detach(Outlet* outlet);

private:
    FileSource() = default;
    bool read(const std::string& path, bool audioOnly);
    void pump(); // Thread: its own (m_thread).
    static gboolean onUpstreamEvent(GstPad* pad, GstObject* parent, GstEvent* event) noexcept;

    EncodedTrack m_video;
    EncodedTrack m_audio;
    std::atomic<bool> m_wantKeyFrame{false}; // a receiver asked (PLI/FIR): jump to the next key frame
    std::mutex m_mutex; // guards the members below; never held while pushing (the main thread takes it)
    std::condition_variable m_wake;
    std::vector<std::shared_ptr<Outlet>> m_outlets; // the pump pushes from a copy
    bool m_stop = false;
    std::thread m_thread;
};

} // namespace tessera::client
