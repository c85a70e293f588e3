#pragma once
// A bin hung off tees of a running pipeline, and taken off again, while the
// pipeline plays: the recorder (off the room's raw composite and full mix),
// the live stream's encoder (the same) and each live target (off the live
// encoder's tees). Each input is a leaky queue behind an isolated ghost pad,
// so a slow or failing branch never stalls the tees nor returns an error to
// them; tee pads are released in IDLE probes; the bin reaches NULL on a
// thread pool, since that waits for its streaming threads, which a hung
// write (file system, network) may never return.
//
//   tee ─► [ghost ─► queue (leaky) ─► first element of the fragment ...]
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gst_util.h"

namespace tessera::media {

class Branch {
public:
    // Thread: main. `bin` is not in `parent` yet; start() adds it.
    Branch(GstBin* parent, ElementRef bin);
    // Thread: main. A branch still attached was left by a parent that
    // stopped (no tee pushes any more): its tee pads go at once, and the bin
    // is taken out without waiting for its writes.
    ~Branch();
    Branch(const Branch&) = delete;
    Branch& operator=(const Branch&) = delete;

    // Thread: main, before start(). Puts a queue that drops its oldest
    // buffers beyond `maxTimeNs` in front of the bin's element named
    // `first`, fed later from `tee`; returns the queue's src pad (for
    // probes; owned by the queue). Throws Error naming `what` when `first`
    // does not link.
    GstPad* addInput(GstElement* tee, const char* first, guint64 maxTimeNs, const std::string& what);
    // Thread: main. Adds the bin to the parent, starts it and links the
    // inputs to their tees; throws Error(Internal) when it cannot start
    // (nothing is left in the parent then).
    void start();
    // Thread: main. Before the parent stops: the parent then leaves this
    // bin running, and the destructor stops it without waiting for it.
    void isolate();

    GstElement* bin() const { return m_bin.get(); }
    // The tee pads feeding the bin, in addInput() order (for upstream events).
    GstPad* teePad(std::size_t input) const { return m_inputs.at(input).teePad.get(); }
    // Whether the bus message comes from inside the bin.
    bool owns(GstMessage* message) const;
    // Whether the message is the EOS of `sink` (inside the bin), forwarded
    // by the bin (its message-forward is set).
    bool forwardedEos(GstMessage* message, GstElement* sink) const;

    // Thread: main. Releases the tee pads when idle (then, with `eos`, sends
    // EOS into the bin); `then` runs on the main context after all are, and
    // not once this is gone.
    void detach(bool eos, std::function<void()> then);
    // Thread: main. Detaches (if not yet) and takes the bin out of the
    // parent; `then` runs on the main context once the bin reached NULL:
    // never while a write blocks for good, and not once this is gone.
    void remove(std::function<void()> then);

private:
    // Takes the bin out of the parent (which waits for none of its threads)
    // and sets it to NULL on a thread pool; `then` runs on the main context
    // after that (if ever).
    void release(std::function<void()> then);

    struct Input {
        ElementRef tee;
        PadRef teePad; // requested by start()
        PadRef entry;  // the bin's ghost sink pad
    };
    GstBin* m_parent; // Borrowed; outlives this.
    ElementRef m_bin; // Owned; in m_parent from start() until released.
    std::vector<Input> m_inputs;
    // Posted work checks it: this may be gone by the time it runs.
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);
    bool m_started = false;
    bool m_detaching = false;
    bool m_detached = false;
    bool m_released = false;
};

} // namespace tessera::media
