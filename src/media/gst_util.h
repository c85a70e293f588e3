#pragma once
// Small RAII helpers for GLib/GStreamer objects from C++ (STYLE.md "Lifetimes").
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <glib-object.h>
#include <gst/gst.h>

GST_DEBUG_CATEGORY_EXTERN(tessera_media_debug);

namespace tessera::media {

// A copyable strong reference to a GObject (a GstObject included).
template <typename T>
class Ref {
public:
    Ref() = default;
    Ref(const Ref& other) : m_ptr(other.m_ptr) {
        if (m_ptr) g_object_ref(m_ptr);
    }
    Ref(Ref&& other) noexcept : m_ptr(std::exchange(other.m_ptr, nullptr)) {}
    Ref& operator=(Ref other) noexcept {
        std::swap(m_ptr, other.m_ptr);
        return *this;
    }
    ~Ref() {
        if (m_ptr) g_object_unref(m_ptr);
    }

    // Takes an owned, non-floating reference.
    static Ref adopt(T* ptr) {
        g_assert(!ptr || !g_object_is_floating(ptr));
        Ref r;
        r.m_ptr = ptr;
        return r;
    }
    // Takes a floating reference (a new element), or adds one to a non-floating object.
    static Ref sink(T* ptr) {
        Ref r;
        r.m_ptr = ptr ? static_cast<T*>(g_object_ref_sink(ptr)) : nullptr;
        return r;
    }
    // Adds a reference to a borrowed pointer.
    static Ref borrow(T* ptr) {
        Ref r;
        r.m_ptr = ptr ? static_cast<T*>(g_object_ref(ptr)) : nullptr;
        return r;
    }

    T* get() const noexcept { return m_ptr; }
    T* operator->() const noexcept { return m_ptr; }
    explicit operator bool() const noexcept { return m_ptr != nullptr; }
    void reset() { Ref().swap(*this); }
    void swap(Ref& other) noexcept { std::swap(m_ptr, other.m_ptr); }

private:
    T* m_ptr = nullptr;
};

using ElementRef = Ref<GstElement>;
using PadRef = Ref<GstPad>;

// A move-only signal handler that disconnects in its destructor. Declare it
// last in a class so it is destroyed first.
class SignalConnection {
public:
    SignalConnection() = default;
    // Takes over a handler id that g_signal_connect*() returned.
    SignalConnection(gpointer instance, gulong id);
    SignalConnection(SignalConnection&& other) noexcept;
    SignalConnection& operator=(SignalConnection&& other) noexcept;
    SignalConnection(const SignalConnection&) = delete;
    SignalConnection& operator=(const SignalConnection&) = delete;
    ~SignalConnection() { disconnect(); }
    void disconnect();

private:
    Ref<GObject> m_instance;
    gulong m_id = 0;
};

struct GFreeDeleter {
    void operator()(gpointer p) const noexcept { g_free(p); }
};
using GCharPtr = std::unique_ptr<gchar, GFreeDeleter>;
struct GErrorDeleter {
    void operator()(GError* e) const noexcept { g_error_free(e); }
};
using GErrorPtr = std::unique_ptr<GError, GErrorDeleter>;

// Runs `fn` later on the default main context. Always defers (an idle
// source), so nothing re-enters. Callable from any thread.
void post(std::function<void()> fn);

// Runs `fn` on GStreamer's thread pool (gst_element_call_async): for work
// that may block, such as state changes to NULL, which must not stall the
// main loop. `fn` must hold references to whatever it touches.
void runAsync(GstElement* element, std::function<void()> fn);

// Ghosts `target` on `bin` (activated, added) and returns the ghost pad
// (owned by the bin). With `isolate`, a sink ghost pad reports GST_FLOW_OK
// upstream whatever happens inside the bin: a receiver whose transport closed
// or failed must never stop a shared tee, which would stop every sender
// behind it (a tee returns the first fatal flow of any branch).
GstPad* ghostPad(GstElement* bin, GstPad* target, bool isolate = false);

// A new floating element; throws Error(Internal) naming a missing plugin.
GstElement* make(const char* factory);
// A queue that drops its oldest buffers beyond `buffers` (never blocks upstream).
GstElement* leakyQueue(guint buffers);

// The element must be inside `bin`; returns it with a new reference or throws.
ElementRef requireByName(GstBin* bin, const char* name);

// Counts every element below `bin`, recursively (the leak check in metrics).
unsigned countElements(GstBin* bin);

// Writes <GST_DEBUG_DUMP_DOT_DIR>/<name>.dot when that variable is set.
void dumpDot(GstBin* bin, const std::string& name);

} // namespace tessera::media
