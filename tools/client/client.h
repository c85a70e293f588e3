#pragma once
// tessera-client: joins a Tessera room over the signaling WebSocket
// (docs/protocol.md) with a webrtcbin peer, sends test media, measures
// what it receives and answers commands on stdin with JSON lines on stdout.
// See docs/client.md.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/analysis/frames.h"
#include "tessera/analysis/tones.h"

namespace tessera::client {

enum class VideoCodec { Vp8, Vp9, H264 };

struct Options {
    std::string server = "ws://127.0.0.1:8080/ws";
    std::string room;
    std::string name;
    std::optional<std::string> token;
    std::string caFile; // non-empty: trust only the CA certificates in this PEM file for wss:// (and https://)
    std::optional<std::int64_t> maxBitrate; // bits/s, > 0
    analysis::Rgb color{0x20, 0xA0, 0x40};  // the solid colour sent
    double toneHz = 440;                    // the sine sent; 0: silence
    double toneVolume = 0.3;                // its amplitude, 0-1
    std::vector<double> detect;             // tones measured in the received audio
    std::string recordPath;                 // empty: no recording
    std::string fileOutPath;                // empty: "file" channel data is only counted
    double duration = 0;                    // seconds; 0: until leave/quit/EOF on stdin
    double connectTimeout = 30;             // seconds; 0: wait forever
    bool receiveOnly = false;
    bool sendOnly = false;         // sendonly transceivers: receives nothing, as an encoder (OBS) publishing by WHIP
    bool relayOnly = false;        // ICE uses TURN relay candidates only, as behind a NAT that needs TURN
    bool holdOffer = false;        // offer on the "offer" command, not at 'joined' (a credential expires first)
    bool offerWithoutSsrc = false; // no a=ssrc lines in the offer sent, as some encoders (WHIP) do
    std::vector<std::string> iceAddresses; // empty: libnice picks the host's addresses
    VideoCodec videoCodec = VideoCodec::Vp8;
    int width = 640;
    int height = 360;
    int fps = 30;
    // Benchmark modes (bench/README.md).
    std::string sendFile;        // non-empty: send this pre-encoded VP8 + Opus Matroska file, looped; no encoding
    bool noDecode = false;       // count received RTP packets only (no depayloading, no decoding)
    bool timestamps = false;     // add "ts" (wall-clock ms) to every event
    bool stamp = false;          // send a magenta picture with a wall-clock stamp and a click every second
    bool readStamp = false;      // read those stamps from the received mix: glass-to-glass latency
    bool audioOnly = false;      // offer (and send) audio only
    bool ignoreSendSize = false; // do not apply the server's send-size (test sources only apply it)
    std::string janus;           // non-empty: join a Janus AudioBridge room at this HTTP API URL instead
    std::int64_t janusRoom = 1234;
    // Non-empty: publish through this WHIP endpoint URL (RFC 9725) instead of
    // the WebSocket; with receiveOnly, watch through this WHEP endpoint.
    std::string whip;
    // Sessions in this process (--count): each a peer of its own, named
    // `name`-i, sharing the main loop and the --send-file source.
    int count = 1;
};

// Runs the client on the thread-default main context until it leaves, quits
// or its duration ends. Returns the process exit status: 0 if the peer
// connection ever reached "connected", 1 if it never did, 2 on a setup
// failure (bad URL, missing GStreamer element).
// Thread: main.
int run(const Options& options);

} // namespace tessera::client
