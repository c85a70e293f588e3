#include "mix_minus.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <gst/audio/audio.h>
#include <gst/audio/gstaudioaggregator.h>

namespace tessera::media {
namespace {

constexpr const char* kMetaName = "TesseraSlotMixes";
constexpr guint kMaxSlots = 16; // config.audio.mixMinusSpeakers' bound

// The mixes of one output buffer while it fills. Inputs in no slot are
// summed straight into the output buffer ("the rest"); each slot's inputs
// into a buffer of their own. When the buffer is done, slot k's mix is the
// rest plus every other slot's inputs, and the full mix the rest plus all
// of them: N + K² adds per sample, each mix a sum of exactly its inputs
// (docs/architecture.md: never a subtraction). Thread: the aggregator's.
struct Cycle {
    std::vector<GstBuffer*> owners; // per slot: its inputs' sum, or null while none mixed

    void clear() {
        for (GstBuffer*& b : owners)
            if (b) gst_buffer_unref(std::exchange(b, nullptr));
    }
};

void addInto(GstBuffer* to, gsize toOffset, GstBuffer* from, gsize fromOffset, gsize bytes) {
    GstMapInfo out, in;
    if (!gst_buffer_map(to, &out, GST_MAP_READWRITE)) return;
    if (gst_buffer_map(from, &in, GST_MAP_READ)) {
        auto* o = reinterpret_cast<float*>(out.data + toOffset);
        const auto* i = reinterpret_cast<const float*>(in.data + fromOffset);
        const gsize n = std::min({bytes, out.size - toOffset, in.size - fromOffset}) / sizeof(float);
        for (gsize s = 0; s < n; ++s) o[s] += i[s];
        gst_buffer_unmap(from, &in);
    }
    gst_buffer_unmap(to, &out);
}

GstBuffer* silentLike(gsize bytes) {
    GstBuffer* b = gst_buffer_new_allocate(nullptr, bytes, nullptr);
    gst_buffer_memset(b, 0, 0, bytes); // F32 silence is all-zero bits
    return b;
}

const GstMetaInfo* slotMeta() {
    static const GstMetaInfo* info = [] {
        static const gchar* tags[] = {nullptr};
        return gst_meta_register_custom(kMetaName, tags, nullptr, nullptr, nullptr);
    }();
    return info;
}

std::string slotField(std::size_t slot) { return "slot" + std::to_string(slot); }

} // namespace
} // namespace tessera::media

using tessera::media::Cycle;

G_BEGIN_DECLS

#define TESSERA_TYPE_MIX_MINUS_PAD (tessera_mix_minus_pad_get_type())
G_DECLARE_FINAL_TYPE(TesseraMixMinusPad, tessera_mix_minus_pad, TESSERA, MIX_MINUS_PAD, GstAudioAggregatorConvertPad)
#define TESSERA_TYPE_MIX_MINUS (tessera_mix_minus_get_type())
G_DECLARE_FINAL_TYPE(TesseraMixMinus, tessera_mix_minus, TESSERA, MIX_MINUS, GstAudioAggregator)

G_END_DECLS

struct _TesseraMixMinusPad {
    GstAudioAggregatorConvertPad parent;
    gint slot; // atomic: set from any thread, read on the aggregator's
};

struct _TesseraMixMinus {
    GstAudioAggregator parent;
    guint slots;
    Cycle* cycle;
    GMutex aggregating; // held through each aggregate call, and by a pad's release
};

G_DEFINE_TYPE(TesseraMixMinusPad, tessera_mix_minus_pad, GST_TYPE_AUDIO_AGGREGATOR_CONVERT_PAD)
G_DEFINE_TYPE(TesseraMixMinus, tessera_mix_minus, GST_TYPE_AUDIO_AGGREGATOR)

namespace {

enum { PROP_0, PROP_SLOT };
enum { PROP_MIX_0, PROP_SLOTS };

void padSetProperty(GObject* object, guint id, const GValue* value, GParamSpec* pspec) {
    if (id == PROP_SLOT)
        g_atomic_int_set(&TESSERA_MIX_MINUS_PAD(object)->slot, g_value_get_int(value));
    else
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
}

void padGetProperty(GObject* object, guint id, GValue* value, GParamSpec* pspec) {
    if (id == PROP_SLOT)
        g_value_set_int(value, g_atomic_int_get(&TESSERA_MIX_MINUS_PAD(object)->slot));
    else
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
}

void mixSetProperty(GObject* object, guint id, const GValue* value, GParamSpec* pspec) {
    auto* self = TESSERA_MIX_MINUS(object);
    if (id == PROP_SLOTS) {
        GST_OBJECT_LOCK(self);
        self->slots = g_value_get_uint(value);
        self->cycle->clear();
        self->cycle->owners.assign(self->slots, nullptr);
        GST_OBJECT_UNLOCK(self);
    } else {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    }
}

void mixGetProperty(GObject* object, guint id, GValue* value, GParamSpec* pspec) {
    if (id == PROP_SLOTS)
        g_value_set_uint(value, TESSERA_MIX_MINUS(object)->slots);
    else
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
}

void mixFinalize(GObject* object) {
    auto* self = TESSERA_MIX_MINUS(object);
    self->cycle->clear();
    delete self->cycle;
    g_mutex_clear(&self->aggregating);
    G_OBJECT_CLASS(tessera_mix_minus_parent_class)->finalize(object);
}

// GStreamer 1.22.0's audio aggregator mixes each pad with the element's and
// the pad's locks dropped and no reference to the pad held, and walks on
// through the element's pad list after (fixed upstream in 1.22.7,
// gstreamer#3052). A pad released meanwhile (a peer leaving, peer.cpp) was
// read after it was freed: so a release waits for the aggregate call under
// way, the output buffer's push downstream included. Lock order:
// `aggregating`, then the base classes' locks.
GstFlowReturn aggregate(GstAggregator* agg, gboolean timeout) {
    auto* self = TESSERA_MIX_MINUS(agg);
    g_mutex_lock(&self->aggregating);
    const GstFlowReturn flow = GST_AGGREGATOR_CLASS(tessera_mix_minus_parent_class)->aggregate(agg, timeout);
    g_mutex_unlock(&self->aggregating);
    return flow;
}

void releasePad(GstElement* element, GstPad* pad) {
    auto* self = TESSERA_MIX_MINUS(element);
    g_mutex_lock(&self->aggregating);
    GST_ELEMENT_CLASS(tessera_mix_minus_parent_class)->release_pad(element, pad);
    g_mutex_unlock(&self->aggregating);
}

GstBuffer* createOutputBuffer(GstAudioAggregator* aagg, guint frames) {
    // A new output buffer: whatever the last one's slots held was either
    // finished or thrown away with it (a flush).
    TESSERA_MIX_MINUS(aagg)->cycle->clear();
    return GST_AUDIO_AGGREGATOR_CLASS(tessera_mix_minus_parent_class)->create_output_buffer(aagg, frames);
}

gboolean aggregateOneBuffer(GstAudioAggregator* aagg, GstAudioAggregatorPad* pad, GstBuffer* in, guint inOffset,
                            GstBuffer* out, guint outOffset, guint frames) {
    auto* self = TESSERA_MIX_MINUS(aagg);
    // Inputs are converted to the source pad's format before they get here.
    const gsize bpf = GST_AUDIO_INFO_BPF(&GST_AUDIO_AGGREGATOR_PAD(GST_AGGREGATOR(aagg)->srcpad)->info);
    const gint slot = g_atomic_int_get(&TESSERA_MIX_MINUS_PAD(pad)->slot);
    GstBuffer* to = out;
    if (slot >= 0 && static_cast<std::size_t>(slot) < self->cycle->owners.size()) {
        GstBuffer*& owner = self->cycle->owners[slot];
        if (!owner) owner = tessera::media::silentLike(gst_buffer_get_size(out));
        to = owner;
    }
    tessera::media::addInto(to, outOffset * bpf, in, inOffset * bpf, frames * bpf);
    return TRUE;
}

GstFlowReturn finishBuffer(GstAggregator* agg, GstBuffer* full) {
    auto* self = TESSERA_MIX_MINUS(agg);
    std::vector<GstBuffer*>& owners = self->cycle->owners;
    const gsize bytes = gst_buffer_get_size(full); // the last buffer before EOS may be cut short
    full = gst_buffer_make_writable(full);         // ours alone: not copied
    if (!owners.empty()) {
        GstStructure* slots =
            gst_custom_meta_get_structure(gst_buffer_add_custom_meta(full, tessera::media::kMetaName));
        GstMapInfo rest; // the inputs in no slot, so far
        if (!gst_buffer_map(full, &rest, GST_MAP_READ)) {
            gst_buffer_unref(full);
            return GST_FLOW_ERROR;
        }
        for (std::size_t k = 0; k < owners.size(); ++k) {
            if (!owners[k]) continue; // leaves nobody out: slotMix() gives the full mix
            GstBuffer* mix = gst_buffer_new_allocate(nullptr, bytes, nullptr);
            gst_buffer_copy_into(mix, full, GstBufferCopyFlags(GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_TIMESTAMPS), 0,
                                 static_cast<gsize>(-1));
            gst_buffer_fill(mix, 0, rest.data, bytes);
            for (std::size_t j = 0; j < owners.size(); ++j)
                if (j != k && owners[j]) tessera::media::addInto(mix, 0, owners[j], 0, bytes);
            gst_structure_set(slots, tessera::media::slotField(k).c_str(), GST_TYPE_BUFFER, mix, nullptr);
            gst_buffer_unref(mix);
        }
        gst_buffer_unmap(full, &rest);
        for (GstBuffer* owner : owners)
            if (owner) tessera::media::addInto(full, 0, owner, 0, bytes);
        self->cycle->clear();
    }
    return GST_AGGREGATOR_CLASS(tessera_mix_minus_parent_class)->finish_buffer(agg, full);
}

// Any rate and channels; F32 only, as the mixing loop reads.
GstStaticPadTemplate kSrcTemplate = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format=(string)" GST_AUDIO_NE(F32) ", layout=(string)interleaved"));
GstStaticPadTemplate kSinkTemplate =
    GST_STATIC_PAD_TEMPLATE("sink_%u", GST_PAD_SINK, GST_PAD_REQUEST,
                            GST_STATIC_CAPS(GST_AUDIO_CAPS_MAKE(GST_AUDIO_FORMATS_ALL) ", layout=(string)interleaved"));

} // namespace

static void tessera_mix_minus_pad_class_init(TesseraMixMinusPadClass* klass) {
    auto* object = G_OBJECT_CLASS(klass);
    object->set_property = padSetProperty;
    object->get_property = padGetProperty;
    g_object_class_install_property(object, PROP_SLOT,
                                    g_param_spec_int("slot", "Slot",
                                                     "The speaker slot whose mix leaves this input out (-1: none)", -1,
                                                     static_cast<gint>(tessera::media::kMaxSlots) - 1, -1,
                                                     GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
}

static void tessera_mix_minus_pad_init(TesseraMixMinusPad* pad) { pad->slot = -1; }

static void tessera_mix_minus_class_init(TesseraMixMinusClass* klass) {
    auto* object = G_OBJECT_CLASS(klass);
    object->set_property = mixSetProperty;
    object->get_property = mixGetProperty;
    object->finalize = mixFinalize;
    g_object_class_install_property(
        object, PROP_SLOTS,
        g_param_spec_uint("slots", "Slots", "Speaker slots: mixes that each leave their own inputs out", 0,
                          tessera::media::kMaxSlots, 0,
                          GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
    auto* element = GST_ELEMENT_CLASS(klass);
    gst_element_class_add_static_pad_template_with_gtype(element, &kSrcTemplate, GST_TYPE_AUDIO_AGGREGATOR_CONVERT_PAD);
    gst_element_class_add_static_pad_template_with_gtype(element, &kSinkTemplate, TESSERA_TYPE_MIX_MINUS_PAD);
    gst_element_class_set_static_metadata(element, "Tessera mix-minus", "Generic/Audio",
                                          "The full mix, and per speaker slot the mix of all inputs but its own",
                                          "Tessera");
    element->release_pad = releasePad;
    GST_AGGREGATOR_CLASS(klass)->aggregate = aggregate;
    GST_AUDIO_AGGREGATOR_CLASS(klass)->aggregate_one_buffer = aggregateOneBuffer;
    GST_AUDIO_AGGREGATOR_CLASS(klass)->create_output_buffer = createOutputBuffer;
    GST_AGGREGATOR_CLASS(klass)->finish_buffer = finishBuffer;
}

static void tessera_mix_minus_init(TesseraMixMinus* self) {
    self->cycle = new Cycle();
    g_mutex_init(&self->aggregating);
}

namespace tessera::media {

void registerMixMinus() {
    static const bool registered = [] {
        slotMeta();
        return gst_element_register(nullptr, "tesseramixminus", GST_RANK_NONE, TESSERA_TYPE_MIX_MINUS);
    }();
    (void)registered;
}

GstBuffer* slotMix(GstBuffer* fullMix, std::size_t slot) {
    if (GstCustomMeta* meta = gst_buffer_get_custom_meta(fullMix, kMetaName))
        if (const GValue* mix = gst_structure_get_value(gst_custom_meta_get_structure(meta), slotField(slot).c_str()))
            return gst_buffer_ref(gst_value_get_buffer(mix));
    return gst_buffer_ref(fullMix);
}

} // namespace tessera::media
