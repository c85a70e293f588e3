// tessera-client: what it sends. Test sources (a solid colour and a tone,
// or stamps for latency), or a pre-encoded file sent in real time.
#include <algorithm>
#include <chrono>
#include <cmath>

#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

#include "client_impl.h"
#include "tessera/analysis/stamp.h"
#include "tessera/protocol/offer_plan.h"

namespace tessera::client {

namespace {

// transport-wide congestion control, offered as browsers do: the server then
// stamps what it sends, and this client's RTP session (webrtcbin 1.22)
// answers with feedback the server estimates our link from. On audio too:
// on the audio-only tier the server sends no video, and judges the link by
// the audio's feedback.
std::string transportCc() {
    return ",rtcp-fb-transport-cc=(boolean)true,extmap-3=(string)\"" + std::string(protocol::kTransportCcUri) + "\"";
}

} // namespace

std::string videoCodecCaps(VideoCodec codec) {
    // rtcp-fb-* fields become a=rtcp-fb lines: the server may ask for key
    // frames (PLI/FIR) and retransmissions.
    const std::string fb =
        ",rtcp-fb-nack=(boolean)true,rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true" + transportCc();
    const std::string base = "application/x-rtp,media=video,clock-rate=90000,payload=" + std::to_string(kVideoPayload);
    switch (codec) {
    case VideoCodec::Vp8: return base + ",encoding-name=VP8" + fb;
    case VideoCodec::Vp9: return base + ",encoding-name=VP9" + fb;
    case VideoCodec::H264:
        // What x264enc's constrained-baseline level 3.1 stream carries (the
        // payloader derives the caps from the SPS, so they must agree);
        // 42c01f and Chrome's 42e01f both mean constrained baseline 3.1.
        // webrtcbin adds level-asymmetry-allowed=1 itself.
        return base + ",encoding-name=H264,packetization-mode=(string)1,profile-level-id=(string)42c01f" + fb;
    }
    return {};
}

namespace {

// The payloader of a codec's RTP stream and the encoding name it carries.
std::pair<std::string, std::string> videoPayloader(VideoCodec codec) {
    switch (codec) {
    case VideoCodec::Vp8: return {"rtpvp8pay picture-id-mode=15-bit", "VP8"};
    case VideoCodec::Vp9: return {"rtpvp9pay picture-id-mode=15-bit", "VP9"};
    // SPS/PPS with every key frame: the server's decoder may start at any.
    case VideoCodec::H264: return {"rtph264pay config-interval=-1 aggregate-mode=zero-latency", "H264"};
    }
    return {};
}

// " ssrc=N ! capsfilter caps=RTP_CAPS,ssrc=N" after a payloader: a fixed,
// random SSRC that webrtcbin finds in the caps when it writes the offer, so
// the offer has its a=ssrc lines even if no packet is out yet (a slow VP9
// encoder at start-up). A server that cannot map an SSRC to its m-line
// takes the stream for the bundle's first m-line, as webrtcbin 1.22 does.
std::string pinSsrc(const std::string& rtpCaps) {
    const std::string ssrc = std::to_string(g_random_int_range(1, G_MAXINT32));
    return " ssrc=" + ssrc + " ! capsfilter caps=\"" + rtpCaps + ",ssrc=(uint)" + ssrc + "\"";
}

} // namespace

std::string audioCodecCaps() {
    return "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,encoding-params=(string)2,"
           "minptime=(string)10,useinbandfec=(string)1,payload=" +
           std::to_string(kAudioPayload) + transportCc();
}

// Pipeline text, numbers only: what it is parsed from must not hold text
// from outside.

// A solid-colour test picture of the configured size and rate.
std::string Client::testPicture(const analysis::Rgb& c) const {
    GCharPtr color(g_strdup_printf("0xFF%02X%02X%02X", c.r, c.g, c.b));
    return "videotestsrc is-live=true pattern=solid-color foreground-color=" + std::string(color.get()) +
           " ! video/x-raw," + (m_options.stamp ? "format=I420," : "") + "width=" + std::to_string(m_options.width) +
           ",height=" + std::to_string(m_options.height) + ",framerate=" + std::to_string(m_options.fps) + "/1";
}

// "ENCODER ! PAYLOADER ! capsfilter" for the configured codec; `name` names the encoder.
std::string Client::videoEncode(const std::string& name) const {
    std::string encoder;
    switch (m_options.videoCodec) {
    case VideoCodec::Vp8:
        encoder = "vp8enc name=" + name + " deadline=1 cpu-used=8 threads=1 keyframe-max-dist=60 target-bitrate=600000";
        break;
    case VideoCodec::Vp9:
        encoder = "vp9enc name=" + name + " deadline=1 cpu-used=8 threads=1 keyframe-max-dist=60 target-bitrate=600000";
        break;
    case VideoCodec::H264:
        encoder = "x264enc name=" + name +
                  " tune=zerolatency speed-preset=ultrafast key-int-max=60 threads=1 bitrate=600 ! "
                  "video/x-h264,profile=constrained-baseline,level=(string)3.1";
        break;
    }
    const auto [payloader, encoding] = videoPayloader(m_options.videoCodec);
    return encoder + " ! " + payloader + " pt=" + std::to_string(kVideoPayload) +
           pinSsrc("application/x-rtp,media=video,encoding-name=" + encoding +
                   ",clock-rate=90000,payload=" + std::to_string(kVideoPayload));
}

// A solid colour and a tone, or with --stamp silence and a magenta picture
// with stamps painted by pad probes on the identities (onStampAudioCb,
// onStampVideoCb).
bool Client::addTestSenders() {
    const bool stamped = m_options.stamp;
    const std::string audio =
        "audiotestsrc name=tone is-live=true " +
        (m_options.toneHz > 0 && !stamped ? "wave=sine freq=" + formatDouble(m_options.toneHz)
                                          : std::string("wave=silence")) +
        (stamped ? " samplesperbuffer=480 ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! "
                   "identity name=stamp-audio"
                 : " volume=" + formatDouble(m_options.toneVolume) + " ! audio/x-raw,rate=48000,channels=1") +
        " ! audioconvert ! audioresample ! "
        "queue max-size-time=200000000 leaky=downstream ! opusenc ! rtpopuspay pt=" +
        std::to_string(kAudioPayload) +
        pinSsrc("application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=" +
                std::to_string(kAudioPayload));
    const std::string video = testPicture(m_options.color) + " ! " + (stamped ? "identity name=stamp-video ! " : "") +
                              // send-size (applySendSize): the scaler's caps and the valve change as the server asks.
                              "videoconvert ! videoscale ! capsfilter name=send-caps ! valve name=send-valve ! "
                              "queue max-size-buffers=3 leaky=downstream ! " +
                              videoEncode("venc");
    if (!addSender(audio, audioCodecCaps()) ||
        (!m_options.audioOnly && !addSender(video, videoCodecCaps(m_options.videoCodec))))
        return false;
    if (!m_options.audioOnly) {
        GstBin* pipeline = GST_BIN(m_pipeline.get());
        // Borrowed: the pipeline holds them for the client's life.
        for (auto [name, element] : {std::pair{"send-caps", &m_sendCaps}, std::pair{"send-valve", &m_sendValve},
                                     std::pair{"venc", &m_videoEncoder}}) {
            auto found = ElementRef::adopt(gst_bin_get_by_name(pipeline, name));
            if (!found) return false;
            *element = found.get();
        }
    }
    if (stamped) {
        for (auto [name, cb] :
             {std::pair{"stamp-audio", &Client::onStampAudioCb}, std::pair{"stamp-video", &Client::onStampVideoCb}}) {
            auto identity = ElementRef::adopt(gst_bin_get_by_name(GST_BIN(m_pipeline.get()), name));
            auto src = PadRef::adopt(identity ? gst_element_get_static_pad(identity.get(), "src") : nullptr);
            if (!src) return false;
            gst_pad_add_probe(src.get(), GST_PAD_PROBE_TYPE_BUFFER, cb, this, nullptr);
        }
    }
    return true;
}

// A payloader for each track, fed by the shared FileSource (file_source.h)
// once the answer is applied (onRemoteDescriptionSet).
bool Client::addFileSenders() {
    const auto description = [](const std::string& payloader, const std::string& caps, int pt) {
        return payloader + " pt=" + std::to_string(pt) +
               pinSsrc("application/x-rtp," + caps + ",payload=" + std::to_string(pt));
    };
    // The file holds --video-codec's video (docs/client.md).
    const auto [payloader, encoding] = videoPayloader(m_options.videoCodec);
    GstElement* audio = nullptr; // Borrowed from m_pipeline.
    GstElement* video = nullptr; // Borrowed from m_pipeline.
    if (!addSender(description("rtpopuspay", "media=audio,encoding-name=OPUS,clock-rate=48000", kAudioPayload),
                   audioCodecCaps(), &audio))
        return false;
    if (!m_options.audioOnly &&
        !addSender(description(payloader, "media=video,encoding-name=" + encoding + ",clock-rate=90000", kVideoPayload),
                   videoCodecCaps(m_options.videoCodec), &video))
        return false;
    auto audioSink = PadRef::adopt(gst_element_get_static_pad(audio, "sink"));
    auto videoSink = PadRef::adopt(video ? gst_element_get_static_pad(video, "sink") : nullptr);
    if (!audioSink || (video && !videoSink)) return false;
    m_fileOutlet = m_fileSource->attach(m_pipeline.get(), videoSink.get(), audioSink.get());
    return true;
}

// A live source bin, payloaded, linked to a new transceiver (sendrecv, or
// sendonly with `sendOnly` or --send-only).
bool Client::addSender(const std::string& description, const std::string& codecCaps, GstElement** added,
                       bool sendOnly) {
    GError* error = nullptr;
    GstElement* bin = gst_parse_bin_from_description(description.c_str(), TRUE, &error);
    GErrorPtr owned(error);
    if (!bin) {
        g_printerr("tessera-client: cannot build \"%s\": %s\n", description.c_str(),
                   error ? error->message : "unknown error");
        return false;
    }
    gst_bin_add(GST_BIN(m_pipeline.get()), bin);
    if (added) *added = bin;
    auto sinkPad = PadRef::adopt(gst_element_request_pad_simple(m_webrtc, "sink_%u"));
    GstWebRTCRTPTransceiver* transceiver = nullptr;
    g_object_get(sinkPad.get(), "transceiver", &transceiver, nullptr);
    const auto transceiverRef = Ref<GstWebRTCRTPTransceiver>::adopt(transceiver);
    if (!transceiver) {
        g_printerr("tessera-client: webrtcbin gave a pad without a transceiver\n");
        return false;
    }
    CapsPtr caps(gst_caps_from_string(codecCaps.c_str()));
    g_object_set(transceiver, "direction",
                 sendOnly || m_options.sendOnly ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY
                                                : GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV,
                 "codec-preferences", caps.get(), nullptr);
    auto srcPad = PadRef::adopt(gst_element_get_static_pad(bin, "src"));
    if (!srcPad || gst_pad_link(srcPad.get(), sinkPad.get()) != GST_PAD_LINK_OK) {
        g_printerr("tessera-client: cannot link \"%s\" to webrtcbin\n", description.c_str());
        return false;
    }
    return true;
}

// A screen share as a browser starts one mid-call: one more video m-line,
// which the client only sends on, and a new offer. Like a browser, webrtcbin
// sends the new stream only once the answer is applied.
std::string Client::startShare(const analysis::Rgb& color) {
    if (m_sharing) return "already sharing";
    if (!m_remoteSet || m_options.audioOnly || m_fileOutlet || !m_options.whip.empty() || !m_options.janus.empty())
        return "a share needs a connected WebSocket session that sends its test camera";
    GstElement* bin = nullptr;
    if (!addSender(testPicture(color) + " ! videoconvert ! queue max-size-buffers=3 leaky=downstream ! " +
                       videoEncode("share-enc"),
                   videoCodecCaps(m_options.videoCodec), &bin, true))
        return "cannot build the share";
    gst_element_sync_state_with_parent(bin);
    m_sharing = true;
    createOffer();
    return {};
}

// The server's send-size for our camera: the test source is scaled to fit
// the size asked (aspect kept, never up) and the encoder capped at the bit
// rate asked; not shown, the valve stops the video until it is shown again,
// which starts with a key frame. A --send-file sender cannot rescale what is
// already encoded (the server scales it anyway), but stops and starts as a
// browser does.
void Client::applySendSize(const proto::SendSize& size) {
    if (m_fileOutlet) m_fileSource->setVideoActive(m_fileOutlet, size.active);
    if (!m_sendCaps) return;
    gboolean stopped = FALSE;
    g_object_get(m_sendValve, "drop", &stopped, nullptr);
    if (!size.active) {
        if (!stopped) g_object_set(m_sendValve, "drop", TRUE, nullptr);
        return;
    }
    const int w = m_options.width, h = m_options.height;
    int width = w, height = h;
    if (size.width > 0 && size.height > 0) {
        const double scale = std::max({1.0, static_cast<double>(w) / size.width, static_cast<double>(h) / size.height});
        // Rounded to the nearest even pixel (1 / scale is inexact: 180 / (180 / 112)
        // must stay 112), never over the size asked.
        const auto fit = [scale](int side, unsigned most) {
            const int even = 2 * static_cast<int>(std::lround(side / scale / 2));
            return std::clamp(even, 2, std::max(2, static_cast<int>(most)));
        };
        width = fit(w, size.width);
        height = fit(h, size.height);
    }
    CapsPtr caps(gst_caps_new_simple("video/x-raw", "width", G_TYPE_INT, width, "height", G_TYPE_INT, height, nullptr));
    g_object_set(m_sendCaps, "caps", caps.get(), nullptr);
    constexpr std::int64_t kDefaultBitrate = 600'000; // the encoders' target above
    const std::int64_t bitrate = size.maxBitrate > 0 ? std::min(kDefaultBitrate, size.maxBitrate) : kDefaultBitrate;
    if (hasProperty(m_videoEncoder, "target-bitrate"))
        g_object_set(m_videoEncoder, "target-bitrate", static_cast<gint>(bitrate), nullptr); // vp8enc, vp9enc: bit/s
    else
        g_object_set(m_videoEncoder, "bitrate", static_cast<guint>(bitrate / 1000), nullptr); // x264enc: kbit/s
    if (stopped) {
        // Asked for before the valve opens, so that the first frame through
        // is the key frame (asked for after, a frame could pass first).
        gst_element_send_event(m_videoEncoder,
                               gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
        g_object_set(m_sendValve, "drop", FALSE, nullptr);
    }
}

double Client::bufferWallMs(GstClockTime pts) {
    auto clock = Ref<GstClock>::adopt(gst_element_get_clock(m_pipeline.get()));
    if (!clock || !GST_CLOCK_TIME_IS_VALID(pts)) return wallMs();
    const GstClockTime at = gst_element_get_base_time(m_pipeline.get()) + pts;
    const auto ahead = static_cast<double>(GST_CLOCK_DIFF(gst_clock_get_time(clock.get()), at));
    return wallMs() + ahead / 1e6;
}

// Thread: streaming. Paints the wall-clock stamp into the raw I420 frame.
GstPadProbeReturn Client::onStampVideoCb(GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept {
    glib::guarded("video stamp", [&] {
        auto* self = static_cast<Client*>(user);
        GstBuffer* buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
        GST_PAD_PROBE_INFO_DATA(info) = buffer;
        CapsPtr caps(gst_pad_get_current_caps(pad));
        GstVideoInfo vinfo;
        GstVideoFrame frame;
        if (!caps || !gst_video_info_from_caps(&vinfo, caps.get()) ||
            GST_VIDEO_INFO_FORMAT(&vinfo) != GST_VIDEO_FORMAT_I420 ||
            !gst_video_frame_map(&frame, &vinfo, buffer, GST_MAP_WRITE))
            return;
        const auto ms = static_cast<std::uint64_t>(self->bufferWallMs(GST_BUFFER_PTS(buffer)));
        analysis::stamp::paintI420(
            {static_cast<std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)), GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0),
             static_cast<std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 1)), GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 1),
             static_cast<std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 2)), GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 2),
             GST_VIDEO_FRAME_WIDTH(&frame), GST_VIDEO_FRAME_HEIGHT(&frame)},
            static_cast<std::uint16_t>(ms & 0xFFFF));
        gst_video_frame_unmap(&frame);
    });
    return GST_PAD_PROBE_OK;
}

// Thread: streaming. Writes a click at every whole second into raw mono S16.
GstPadProbeReturn Client::onStampAudioCb(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    glib::guarded("audio stamp", [&] {
        auto* self = static_cast<Client*>(user);
        GstBuffer* buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
        GST_PAD_PROBE_INFO_DATA(info) = buffer;
        GstMapInfo map;
        if (gst_buffer_map(buffer, &map, GST_MAP_WRITE)) {
            analysis::stamp::paintClicks(reinterpret_cast<std::int16_t*>(map.data), map.size / sizeof(std::int16_t),
                                         self->bufferWallMs(GST_BUFFER_PTS(buffer)), static_cast<int>(kAudioRate));
            gst_buffer_unmap(buffer, &map);
        }
    });
    return GST_PAD_PROBE_OK;
}

} // namespace tessera::client
