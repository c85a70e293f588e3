#pragma once
// Clients with data channels (docs/datachannels.md), for the tests that chat
// and send files through the server (test_datachannels.cpp, test_hostile.cpp).
#include <memory>
#include <string>
#include <vector>

#include "harness.h"

namespace tessera::testing {

// A client in `room` whose `chat` and `file` channels are open, at the
// client and at the server.
std::unique_ptr<Client> joinWithChannels(Server& server, const Participant& who,
                                         const std::vector<std::string>& extra = {}, const std::string& room = "dc");

// Waits until the server relays `from`'s chat to `to`: a client sees its
// channels open before the server has attached them, and a message in that
// window reaches nobody. Sends "ping" until one arrives.
void waitRelay(Client& from, Client& to);

// Sends a client command that must succeed (a channel that is not open fails it).
void send(Client& client, const std::string& line);

// The `start` control message of a transfer.
std::string fileStart(const std::string& id, const std::string& name, int size);

} // namespace tessera::testing
