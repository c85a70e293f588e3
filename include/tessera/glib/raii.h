#pragma once
// The one RAII layer for GLib objects from C++ (STYLE.md "Lifetimes"), used by
// media, server and the client: references, signal connections, GError and
// g_free holders, and work posted to the main context with a liveness check.
// Header-only; GStreamer's mini-objects are in gst_raii.h beside it.
#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include <glib-object.h>

namespace tessera::glib {

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
    // Gives the reference to the caller (for an API that takes ownership).
    T* release() noexcept { return std::exchange(m_ptr, nullptr); }
    void reset() { Ref().swap(*this); }
    void swap(Ref& other) noexcept { std::swap(m_ptr, other.m_ptr); }

private:
    T* m_ptr = nullptr;
};

// A move-only signal handler that disconnects in its destructor. It holds a
// reference to the instance, so disconnecting is always safe. Declare it last
// in a class so it is destroyed first: no callback reaches a half-destroyed
// object.
class SignalConnection {
public:
    SignalConnection() = default;
    // Takes over a handler id that g_signal_connect*() returned.
    SignalConnection(gpointer instance, gulong id) : m_instance(Ref<GObject>::borrow(G_OBJECT(instance))), m_id(id) {}
    SignalConnection(SignalConnection&& other) noexcept
        : m_instance(std::move(other.m_instance)), m_id(std::exchange(other.m_id, 0)) {}
    SignalConnection& operator=(SignalConnection&& other) noexcept {
        if (this != &other) {
            disconnect();
            m_instance = std::move(other.m_instance);
            m_id = std::exchange(other.m_id, 0);
        }
        return *this;
    }
    SignalConnection(const SignalConnection&) = delete;
    SignalConnection& operator=(const SignalConnection&) = delete;
    ~SignalConnection() { disconnect(); }
    void disconnect() noexcept {
        if (m_id && m_instance) g_signal_handler_disconnect(m_instance.get(), m_id);
        m_id = 0;
        m_instance.reset();
    }

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

// Runs `fn` and logs what it throws: every C callback trampoline calls
// through this, since no exception may unwind through GLib frames.
template <typename F>
void guarded(const char* what, F&& fn) noexcept {
    try {
        std::forward<F>(fn)();
    } catch (const std::exception& e) {
        g_warning("%s threw: %s", what, e.what());
    } catch (...) {
        g_warning("%s threw", what);
    }
}

// Runs `fn` later on the default main context. Always defers (an idle
// source), so nothing re-enters. Callable from any thread.
inline void post(std::function<void()> fn) {
    g_idle_add_full(
        G_PRIORITY_DEFAULT,
        [](gpointer data) noexcept -> gboolean {
            guarded("posted task", *static_cast<std::function<void()>*>(data));
            return G_SOURCE_REMOVE;
        },
        new std::function<void()>(std::move(fn)),
        [](gpointer data) noexcept { delete static_cast<std::function<void()>*>(data); });
}

// The same, only while `owner` lives: `fn` gets the owner (`fn(T&)`), or
// nothing (`fn()`, for an owner that is a Liveness token beside `this`).
template <typename T, typename F>
void post(std::weak_ptr<T> owner, F fn) {
    post([owner = std::move(owner), fn = std::move(fn)]() mutable {
        auto alive = owner.lock();
        if (!alive) return;
        if constexpr (std::is_invocable_v<F&, T&>) {
            fn(*alive);
        } else {
            fn();
        }
    });
}

// For an object that is not owned by a shared_ptr: posted work holds
// weak(), and does nothing once the object (and so this token) is gone.
class Liveness {
public:
    std::weak_ptr<void> weak() const noexcept { return m_token; }

private:
    std::shared_ptr<void> m_token = std::make_shared<bool>(true);
};

} // namespace tessera::glib
