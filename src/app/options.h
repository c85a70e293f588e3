#pragma once
// The command line: tessera [OPTION...] [validate FILE... | token --room R --name N ...]
#include <string>
#include <vector>

#include "tessera/protocol/config.h"

namespace tessera::app {

// What `tessera token` mints (docs/security.md); checked when it runs.
struct TokenRequest {
    std::string room;
    std::string name;
    std::string ttl = "1h";
    std::string grants = "publish,subscribe";
};

struct Options {
    Config config;                    // defaults < --config file < flags; directories resolved
    std::vector<std::string> command; // the words after the options: empty, {"validate", FILE...} or {"token"}
    TokenRequest token;               // the token options
    bool version = false;             // --version: print it and exit
};

// Parses the command line with GOptionContext, GStreamer's options included
// (so this also initialises GStreamer). --help prints and exits. Throws Error
// with a message for the user (which flag or config key is wrong, and why).
// With --version nothing else is read.
Options parseOptions(int argc, char** argv);

} // namespace tessera::app
