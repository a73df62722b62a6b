// Calls an endpoint client owes its caller (completions, endpoint events), queued and run later
// on the loop, in order, never inside the call that produced them (a caller may start the next
// operation from a completion without re-entering the client). One post to the loop runs every
// call queued by then. Used by the reputation and the analysis clients.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <deque>
#include <functional>
#include <memory>

namespace sluice::control {

class DeferredCalls {
 public:
  // `owner`: the object this belongs to (a member of it); a post that finds it gone does nothing,
  // and the calls run with it kept alive.
  DeferredCalls(boost::asio::io_context& io, std::weak_ptr<void> owner = {}) : io_(io), owner_(std::move(owner)) {}
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  void push(std::function<void()> call) {
    ready_.push_back(std::move(call));
    if (posted_) return;
    posted_ = true;
    boost::asio::post(io_, [owner = owner_, this] {
      auto keep = owner.lock();
      if (!keep) return;
      posted_ = false;
      run();
    });
  }
  // Runs what is queued now (the owner is alive: the caller is it).
  void run() {
    while (!ready_.empty()) {
      auto f = std::move(ready_.front());
      ready_.pop_front();
      f();
    }
  }

 private:
  boost::asio::io_context& io_;
  std::weak_ptr<void> owner_;
  std::deque<std::function<void()>> ready_;
  bool posted_ = false;
};

}  // namespace sluice::control
