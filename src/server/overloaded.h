#pragma once
// std::visit over a message variant with one lambda per alternative.

namespace tessera::server {

template <class... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

} // namespace tessera::server
