// tessera-client command line: options (GOptionContext), stdout/stderr set-up.
// See docs/client.md.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <unistd.h>

#include <glib.h>
#include <gst/gst.h>

#include "client.h"
#include "tessera/analysis/frames.h"
#include "tessera/analysis/tones.h"
#include "tessera/protocol/messages.h"

namespace {

// stdout carries JSON lines only: every GLib log line goes to stderr (the
// default writer sends debug and info to stdout).
GLogWriterOutput writeLogToStderr(GLogLevelFlags level, const GLogField* fields, gsize count, gpointer) {
    const char* domain = nullptr;
    for (gsize i = 0; i < count; ++i)
        if (std::strcmp(fields[i].key, "GLIB_DOMAIN") == 0) domain = static_cast<const char*>(fields[i].value);
    if (g_log_writer_default_would_drop(level, domain)) return G_LOG_WRITER_HANDLED;
    gchar* line = g_log_writer_format_fields(level, fields, count, FALSE);
    std::fprintf(stderr, "%s\n", line);
    g_free(line);
    return G_LOG_WRITER_HANDLED;
}

int fail(const std::string& message) {
    std::fprintf(stderr, "tessera-client: %s\n", message.c_str());
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::signal(SIGPIPE, SIG_IGN);
    g_log_set_writer_func(writeLogToStderr, nullptr, nullptr);

    gchar* server = nullptr;
    gchar* room = nullptr;
    gchar* name = nullptr;
    gchar* token = nullptr;
    gchar* caFile = nullptr;
    gint64 maxBitrate = 0;
    gchar* color = nullptr;
    gdouble tone = 440;
    gdouble volume = 0.3;
    gchar* detect = nullptr;
    gchar* record = nullptr;
    gchar* fileOut = nullptr;
    gdouble duration = 0;
    gdouble connectTimeout = 30;
    gboolean receiveOnly = FALSE;
    gboolean sendOnly = FALSE;
    gboolean relayOnly = FALSE;
    gboolean holdOffer = FALSE;
    gboolean offerWithoutSsrc = FALSE;
    gchar** iceAddresses = nullptr;
    gchar* videoCodec = nullptr;
    gint width = 640;
    gint height = 360;
    gint fps = 30;
    gchar* sendFile = nullptr;
    gboolean noDecode = FALSE;
    gboolean timestamps = FALSE;
    gboolean stamp = FALSE;
    gboolean readStamp = FALSE;
    gboolean audioOnly = FALSE;
    gboolean ignoreSendSize = FALSE;
    gchar* janus = nullptr;
    gint64 janusRoom = 1234;
    gchar* whip = nullptr;
    gchar* whep = nullptr;
    gint count = 1;

    const GOptionEntry entries[] = {
        {"server", 's', 0, G_OPTION_ARG_STRING, &server, "Signaling WebSocket URL (default ws://127.0.0.1:8080/ws)",
         "URL"},
        {"room", 'r', 0, G_OPTION_ARG_STRING, &room, "Room to join (required)", "ROOM"},
        {"name", 'n', 0, G_OPTION_ARG_STRING, &name, "Display name (required)", "NAME"},
        {"token", 0, 0, G_OPTION_ARG_STRING, &token, "Join token", "TOKEN"},
        {"ca", 0, 0, G_OPTION_ARG_FILENAME, &caFile,
         "Trust the CA (or self-signed) certificates in this PEM file instead of the system's, for wss://", "FILE"},
        {"max-bitrate", 0, 0, G_OPTION_ARG_INT64, &maxBitrate, "Bits/s this client can receive (join maxBitrate)",
         "BPS"},
        {"color", 'c', 0, G_OPTION_ARG_STRING, &color, "Colour of the video sent (default 0x20A040)", "0xRRGGBB"},
        {"tone", 't', 0, G_OPTION_ARG_DOUBLE, &tone, "Frequency of the sine sent; 0 sends silence (default 440)", "HZ"},
        {"volume", 0, 0, G_OPTION_ARG_DOUBLE, &volume, "Amplitude of the sine sent, 0-1 (default 0.3)", "V"},
        {"detect", 'd', 0, G_OPTION_ARG_STRING, &detect, "Tones to measure in the received audio", "HZ,HZ,..."},
        {"record", 0, 0, G_OPTION_ARG_FILENAME, &record, "Also write the received media to this Matroska file",
         "FILE.mkv"},
        {"file-out", 0, 0, G_OPTION_ARG_FILENAME, &fileOut,
         "Append binary messages received on the \"file\" channel to FILE", "FILE"},
        {"duration", 0, 0, G_OPTION_ARG_DOUBLE, &duration,
         "Print a final report and leave after this many seconds (default: run until leave/quit)", "SECONDS"},
        {"connect-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &connectTimeout,
         "Give up (exit 1) if not connected after this many seconds; 0 waits forever (default 30)", "SECONDS"},
        {"receive-only", 0, 0, G_OPTION_ARG_NONE, &receiveOnly, "Send nothing; recvonly transceivers", nullptr},
        {"send-only", 0, 0, G_OPTION_ARG_NONE, &sendOnly,
         "Receive nothing; sendonly transceivers (an encoder publishing, e.g. with --whip)", nullptr},
        {"relay-only", 0, 0, G_OPTION_ARG_NONE, &relayOnly,
         "Connect through the TURN servers of 'joined' only (relay candidates)", nullptr},
        {"hold-offer", 0, 0, G_OPTION_ARG_NONE, &holdOffer,
         "After 'joined', wait for the 'offer' command before offering (and gathering candidates)", nullptr},
        {"offer-without-ssrc", 0, 0, G_OPTION_ARG_NONE, &offerWithoutSsrc,
         "Leave the a=ssrc lines out of the offer sent, as some encoders do: the server learns the SSRCs from the "
         "packets",
         nullptr},
        {"ice-address", 0, 0, G_OPTION_ARG_STRING_ARRAY, &iceAddresses,
         "Local address ICE may use (repeatable or comma-separated), e.g. 127.0.0.1", "ADDRESS"},
        {"video-codec", 0, 0, G_OPTION_ARG_STRING, &videoCodec, "vp8 (default), h264 or vp9", "CODEC"},
        {"width", 0, 0, G_OPTION_ARG_INT, &width, "Width of the video sent (default 640)", "PIXELS"},
        {"height", 0, 0, G_OPTION_ARG_INT, &height, "Height of the video sent (default 360)", "PIXELS"},
        {"fps", 0, 0, G_OPTION_ARG_INT, &fps, "Frame rate of the video sent (default 30)", "FPS"},
        {"send-file", 0, 0, G_OPTION_ARG_FILENAME, &sendFile,
         "Send this pre-encoded VP8 + Opus Matroska file, looped, instead of encoding (load clients)", "FILE.mkv"},
        {"no-decode", 0, 0, G_OPTION_ARG_NONE, &noDecode,
         "Count received RTP packets instead of decoding them (load clients)", nullptr},
        {"timestamps", 0, 0, G_OPTION_ARG_NONE, &timestamps, "Add \"ts\" (wall-clock ms) to every event", nullptr},
        {"stamp", 0, 0, G_OPTION_ARG_NONE, &stamp,
         "Send a magenta picture carrying a wall-clock stamp and a click every second (latency sender)", nullptr},
        {"read-stamp", 0, 0, G_OPTION_ARG_NONE, &readStamp,
         "Read those stamps from the received mix and report glass-to-glass latency", nullptr},
        {"audio-only", 0, 0, G_OPTION_ARG_NONE, &audioOnly, "Offer and send audio only", nullptr},
        {"ignore-send-size", 0, 0, G_OPTION_ARG_NONE, &ignoreSendSize,
         "Keep sending full size whatever the server's send-size asks (a sender that does not obey)", nullptr},
        {"janus", 0, 0, G_OPTION_ARG_STRING, &janus,
         "Join a Janus AudioBridge room through this HTTP API URL instead (implies --audio-only)", "URL"},
        {"janus-room", 0, 0, G_OPTION_ARG_INT64, &janusRoom, "AudioBridge room id (default 1234)", "ID"},
        {"whip", 0, 0, G_OPTION_ARG_STRING, &whip,
         "Publish through this WHIP endpoint (RFC 9725) instead of the WebSocket, e.g. "
         "http://127.0.0.1:8080/whip/ROOM?name=NAME; --room and --name are then not needed",
         "URL"},
        {"whep", 0, 0, G_OPTION_ARG_STRING, &whep,
         "Watch the room's mix through this WHEP endpoint instead (receive-only, no member of the room), e.g. "
         "http://127.0.0.1:8080/whep/ROOM?tier=low; --room and --name are then not needed",
         "URL"},
        {"count", 0, 0, G_OPTION_ARG_INT, &count,
         "Run this many sessions in this process, each a peer of its own named NAME-0, NAME-1, ..., sharing the "
         "--send-file source (cheap load clients); stdin takes report, leave and quit (default 1)",
         "N"},
        {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
    };

    GOptionContext* context = g_option_context_new("- join a Tessera room and report what arrives");
    g_option_context_set_summary(context,
                                 "Commands on stdin, one per line: report | send RAW_JSON | chat TEXT | leave | quit.\n"
                                 "Answers and events are JSON lines on stdout; logs go to stderr. See docs/client.md.");
    g_option_context_add_main_entries(context, entries, nullptr);
    g_option_context_add_group(context, gst_init_get_option_group());
    GError* error = nullptr;
    const bool parsed = g_option_context_parse(context, &argc, &argv, &error);
    g_option_context_free(context);
    if (!parsed) {
        const std::string message = error ? error->message : "bad options";
        if (error) g_error_free(error);
        return fail(message);
    }
    gst_init(&argc, &argv);

    tessera::client::Options options;
    if (server) options.server = server;
    // With --whip or --whep the endpoint URL names the room (and the name,
    // in its query). WHEP is the WHIP exchange with a receive-only offer.
    if (whip && whep) return fail("--whip excludes --whep");
    if (whip) {
        if (!g_str_has_prefix(whip, "http://") && !g_str_has_prefix(whip, "https://"))
            return fail("--whip takes an http:// or https:// URL");
        if (receiveOnly || janus || holdOffer) return fail("--whip excludes --receive-only, --janus and --hold-offer");
        options.whip = whip;
    }
    if (whep) {
        if (!g_str_has_prefix(whep, "http://") && !g_str_has_prefix(whep, "https://"))
            return fail("--whep takes an http:// or https:// URL");
        if (sendOnly || janus || holdOffer) return fail("--whep excludes --send-only, --janus and --hold-offer");
        options.whip = whep;
        receiveOnly = TRUE;
    }
    if (room && !tessera::protocol::isValidRoomName(room)) return fail("--room must be 1-64 of [A-Za-z0-9_-]");
    if (!room && !whip && !whep) return fail("--room is required: 1-64 of [A-Za-z0-9_-]");
    if (room) options.room = room;
    if (name && (!*name || g_utf8_strlen(name, -1) > 64 || !g_utf8_validate(name, -1, nullptr)))
        return fail("--name must be 1-64 characters");
    if (!name && !whip && !whep) return fail("--name is required: 1-64 characters");
    if (name) options.name = name;
    if (token) options.token = std::string(token);
    if (caFile) options.caFile = caFile;
    if (maxBitrate < 0) return fail("--max-bitrate must be positive");
    if (maxBitrate > 0) options.maxBitrate = maxBitrate;
    if (color) {
        const auto rgb = tessera::analysis::parseColor(color);
        if (!rgb) return fail("--color must be 0xRRGGBB");
        options.color = *rgb;
    }
    if (!(tone >= 0 && tone < 24000)) return fail("--tone must be in [0, 24000) Hz");
    options.toneHz = tone;
    if (!(volume >= 0 && volume <= 1)) return fail("--volume must be in [0, 1]");
    options.toneVolume = volume;
    if (detect) {
        const auto list = tessera::analysis::parseFrequencyList(detect);
        if (!list) return fail("--detect must be a comma-separated list of frequencies in Hz");
        options.detect = *list;
    }
    if (record) options.recordPath = record;
    if (fileOut) options.fileOutPath = fileOut;
    if (!(duration >= 0)) return fail("--duration must not be negative");
    options.duration = duration;
    if (!(connectTimeout >= 0)) return fail("--connect-timeout must not be negative");
    options.connectTimeout = connectTimeout;
    options.receiveOnly = receiveOnly;
    if (sendOnly && receiveOnly) return fail("--send-only excludes --receive-only");
    options.sendOnly = sendOnly;
    options.relayOnly = relayOnly;
    options.holdOffer = holdOffer;
    options.offerWithoutSsrc = offerWithoutSsrc;
    for (gchar** a = iceAddresses; a && *a; ++a) {
        gchar** parts = g_strsplit(*a, ",", -1);
        for (gchar** p = parts; *p; ++p)
            if (**p) options.iceAddresses.emplace_back(g_strstrip(*p));
        g_strfreev(parts);
    }
    const std::string codec = videoCodec ? videoCodec : "vp8";
    if (codec == "vp8")
        options.videoCodec = tessera::client::VideoCodec::Vp8;
    else if (codec == "h264")
        options.videoCodec = tessera::client::VideoCodec::H264;
    else if (codec == "vp9")
        options.videoCodec = tessera::client::VideoCodec::Vp9;
    else
        return fail("--video-codec must be vp8, h264 or vp9");
    if (width < 16 || width > 4096 || height < 16 || height > 4096 || width % 2 || height % 2)
        return fail("--width and --height must be even, 16..4096");
    if (fps < 1 || fps > 120) return fail("--fps must be 1..120");
    options.width = width;
    options.height = height;
    options.fps = fps;
    if (sendFile) options.sendFile = sendFile;
    if (sendFile && (stamp || receiveOnly)) return fail("--send-file excludes --stamp and --receive-only");
    if (stamp && receiveOnly) return fail("--stamp excludes --receive-only");
    if (stamp && options.videoCodec != tessera::client::VideoCodec::Vp8) return fail("--stamp sends VP8 only");
    if (noDecode && readStamp) return fail("--read-stamp needs decoding: drop --no-decode");
    options.noDecode = noDecode;
    options.timestamps = timestamps;
    options.stamp = stamp;
    options.readStamp = readStamp;
    if (count < 1 || count > 200) return fail("--count must be 1..200");
    if (count > 1) {
        if (janus || holdOffer || record || fileOut || readStamp)
            return fail("--count excludes --janus, --hold-offer, --record, --file-out and --read-stamp");
        // The longest suffix, "-199", must fit the name's 64 characters.
        if (name && g_utf8_strlen(name, -1) + 1 + static_cast<glong>(std::to_string(count - 1).size()) > 64)
            return fail("--name with --count must leave room for its -N suffix (64 characters in all)");
    }
    options.count = count;
    if (janus) options.janus = janus;
    options.janusRoom = janusRoom;
    options.audioOnly = audioOnly || janus;
    options.ignoreSendSize = ignoreSendSize;
    if (options.audioOnly && stamp) return fail("--stamp sends video: not with --audio-only or --janus");

    for (gchar* s :
         {server, room, name, token, caFile, color, detect, record, fileOut, videoCodec, sendFile, janus, whip, whep})
        g_free(s);
    g_strfreev(iceAddresses);

    const int code = tessera::client::run(options);
    // The client is torn down by now (pipeline NULL, recording finalised,
    // files closed). usrsctp and libnice keep threads of their own past the
    // pipeline's NULL state; gst_deinit() or static destructors running under
    // them crashed at exit now and then ("double free" from glibc), so skip
    // process teardown.
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(code);
}
