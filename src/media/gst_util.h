#pragma once
// GStreamer helpers of the media module. The RAII types come from
// tessera/glib (one layer for media, server and client).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <gst/gst.h>

#include "tessera/glib/gst_raii.h"

GST_DEBUG_CATEGORY_EXTERN(tessera_media_debug);

namespace tessera::media {

using glib::ElementRef;
using glib::GCharPtr;
using glib::GErrorPtr;
using glib::PadRef;
using glib::post;
using glib::Ref;
using glib::SignalConnection;

// Runs `fn` on a thread pool: for work that may block, such as state
// changes to NULL, which must not stall the main loop. `fn` must hold
// references to whatever it touches; they go when it returns.
void runAsync(std::function<void()> fn);

// Work running off the main thread that something must outlast: a room's
// pipeline stops only once every peer teardown inside it (on the thread
// pool, runAsync) is done. Each piece of work holds a token from hold() and drops it
// when it no longer touches anything; any thread.
class PendingWork {
public:
    using Token = std::shared_ptr<void>;
    Token hold();
    // Waits until no token is held; false if some still were at `bound`.
    bool waitIdle(std::chrono::milliseconds bound);

private:
    struct State {
        std::mutex mutex;
        std::condition_variable idle;
        unsigned held = 0;
    };
    std::shared_ptr<State> m_state = std::make_shared<State>();
};

// The running time of `pts` in the segment `pad` last carried (its sticky
// segment event): what compares buffers across elements whose segments
// differ (mixers start theirs at their first buffer). For buffer probes: a
// pad has stored the segment before any buffer in it passes. NONE before any
// segment, or outside it. Inline: the audio switch's unit test links no
// media library.
inline GstClockTime runningTime(GstPad* pad, GstClockTime pts) {
    GstEvent* event = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0);
    if (!event) return GST_CLOCK_TIME_NONE;
    const GstSegment* segment = nullptr;
    gst_event_parse_segment(event, &segment);
    const GstClockTime at = gst_segment_to_running_time(segment, GST_FORMAT_TIME, pts);
    gst_event_unref(event);
    return at;
}

// Ghosts `target` on `bin` (activated, added) and returns the ghost pad
// (owned by the bin). With `isolate`, a sink ghost pad reports GST_FLOW_OK
// upstream whatever happens inside the bin: a receiver whose transport closed
// or failed must never stop a shared tee, which would stop every sender
// behind it (a tee returns the first fatal flow of any branch).
GstPad* ghostPad(GstElement* bin, GstPad* target, bool isolate = false);
// Makes the sink ghost pad `ghost` report GST_FLOW_OK upstream, whatever its
// target returns (before it is activated or linked).
void isolateFlow(GstPad* ghost);

// A new floating element; throws Error(Internal) naming a missing plugin.
GstElement* make(const char* factory);
// A queue that drops its oldest buffers beyond `buffers` (never blocks upstream).
GstElement* leakyQueue(guint buffers);

// Makes `tee` answer caps and accept-caps queries itself, with `caps` (what
// every one of its branches takes), instead of asking each branch. Each
// caps query from an input of the compositor (a participant's decode branch,
// at each size change) went on through the composite's tee into every
// encoder, and on into every receiver's payloader and webrtcbin: tens of
// milliseconds for one query in a room of 20 joining, and all for nothing,
// as each branch scales the composite to its own size.
void answerCapsAt(GstElement* tee, GstCaps* caps);

// The element must be inside `bin`; returns it with a new reference or throws.
ElementRef requireByName(GstBin* bin, const char* name);

// Counts every element below `bin`, recursively (the leak check in metrics).
unsigned countElements(GstBin* bin);
// Counts the elements below `bin` made by the factory `factory` ("opusenc").
unsigned countElements(GstBin* bin, const char* factory);

// Writes <GST_DEBUG_DUMP_DOT_DIR>/<name>.dot when that variable is set.
void dumpDot(GstBin* bin, const std::string& name);

} // namespace tessera::media
