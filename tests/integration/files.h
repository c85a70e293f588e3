#pragma once
// Files and directories the integration tests share: reading a file, a fresh
// recording directory, a recording's metadata, a process's /proc status,
// and polling a room's details.
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "harness.h"

namespace tessera::testing {

// The whole file, or "" if it cannot be read.
std::string readText(const std::string& path);
// A fresh directory for one test's files, kept beside the logs for inspection
// (TESSERA_ARTIFACTS, else the system's temporary directory).
std::string freshDir(const std::string& what);
// Server flags for recording into `dir` that a loaded 2-core machine keeps
// up with: a small canvas at 15 frames/s, one quality tier, a small recording.
std::vector<std::string> recorderArgs(const std::string& dir);
// The metadata beside a recording: <stem>.json, for a segment "<stem>-NNNNN.ext" too.
std::string metadataFor(const std::string& file);
// A response body as JSON (the body in the failure message if it is not).
Json jsonOf(const HttpResponse& r);
// A field of /proc/<pid>/status ("VmRSS" in kB); fails the test if there is none.
long procStatus(pid_t pid, const std::string& field);
// Whether the process runs with AddressSanitizer (scripts/test's
// integration-asan suite): its memory map holds GCC's libasan. Its allocator
// holds freed memory in quarantine and shadows all of it, so its RSS says
// nothing about Tessera's.
bool sanitized(pid_t pid);
// Polls GET /api/rooms/{room} until `done` holds; returns the last details.
Json waitRoom(Server& server, const std::string& room, const std::function<bool(const Json&)>& done);

// Writes a VP8 + Opus Matroska file for `tessera-client --send-file` at
// `path` with gst-launch-1.0: `video` (words ending in raw video) through
// vp8enc (deadline=1 cpu-used=8 threads=1, then `vp8`), `audioFrames` 20 ms
// frames of an audiotestsrc with `audio` as mono Opus, and `more` (further
// branches, e.g. a compositor's inputs). Fails the test if gst-launch does.
void writeSendFile(const std::string& path, const std::string& what, const std::vector<std::string>& video,
                   const std::vector<std::string>& vp8, int audioFrames, const std::vector<std::string>& audio,
                   const std::vector<std::string>& more = {});

// Server arguments for a small composite with one tier (a call that keeps up
// on a loaded 2-core machine), then `more`.
std::vector<std::string> smallCall(std::vector<std::string> more = {});

} // namespace tessera::testing
