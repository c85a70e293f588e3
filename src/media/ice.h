#pragma once
// Where ICE gathers the server's candidates (docs/config.md, iceAddresses).
#include <string>
#include <vector>

#include "tessera/protocol/config.h"

namespace tessera::media {

// The local addresses to give libnice: `iceAddresses` when configured; else,
// when the server listens on loopback (its clients are on this host, and a
// loopback-only host has no other address), every interface's address and
// loopback's; else none, which leaves libnice its default (every interface
// but loopback). Read afresh at each call: interfaces come and go.
std::vector<std::string> iceAddresses(const Config& config);

// Why ICE can gather no candidate on this host (said at start-up and in the
// error a joining client gets), or "" when it can.
std::string iceProblem(const Config& config);

} // namespace tessera::media
