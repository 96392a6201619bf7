// A C ABI over PyTorch's own c10d: TCPStore, ProcessGroupGloo (ProcessGroupNCCL with
// FUSIONPROT_NCCL), the collectives the trainer uses, and SyncBatchNorm as a C++ autograd
// function (tch cannot define one). Tensors cross as `at::Tensor*`, the pointer tch's `C_tensor`
// wraps, so nothing is copied. Every entry point catches C++ exceptions and returns them as a
// malloc'ed message (freed by fp_string_free); none throws across the boundary.

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef FUSIONPROT_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank;
  int world;
};

char* copy_message(const char* what) {
  size_t n = std::strlen(what);
  char* out = static_cast<char*>(std::malloc(n + 1));
  if (out != nullptr) {
    std::memcpy(out, what, n + 1);
  }
  return out;
}

// Runs `f`; on an exception stores its message in *err and returns `fail`.
template <typename F, typename R>
R guarded(char** err, R fail, F f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    // c10's what() carries a C++ backtrace; the message alone is what a user needs.
    *err = copy_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = copy_message(e.what());
  } catch (...) {
    *err = copy_message("unknown C++ exception");
  }
  return fail;
}

std::vector<at::Tensor> tensors_of(at::Tensor** ts, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; i++) {
    out.push_back(*ts[i]);
  }
  return out;
}

// Every dimension but the channel one (1), as BatchNorm reduces.
std::vector<int64_t> reduced_dims(const at::Tensor& x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); d++) {
    dims.push_back(d);
  }
  return dims;
}

// [C] -> [1, C, 1, ...] to broadcast against x.
at::Tensor per_channel(const at::Tensor& v, const at::Tensor& x) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = v.size(0);
  return v.view(shape);
}

void allreduce_sum(Group* g, at::Tensor& t) {
  std::vector<at::Tensor> ts{t};
  g->backend->allreduce(ts)->wait();
}

// SyncBatchNorm as torch.nn.SyncBatchNorm computes it: batch statistics over every rank's rows
// (forward all-reduces the count and sum, then the centred squares: two passes, as the CPU
// batch_norm), running statistics from the global batch (unbiased variance), and a backward that
// all-reduces sum(dy) and sum(dy·(x−mean)) so that each rank's input gradient is the full one.
// grad_weight and grad_bias stay local: the gradient all-reduce averages them, as under DDP.
struct SyncBatchNorm : public torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor weight,
                            at::Tensor bias, at::Tensor running_mean, at::Tensor running_var,
                            double momentum, double eps, int64_t group) {
    Group* g = reinterpret_cast<Group*>(group);
    auto dims = reduced_dims(x);
    at::Tensor xf = x.to(at::kFloat);
    int64_t channels = x.size(1);
    double local = static_cast<double>(x.numel() / std::max<int64_t>(channels, 1));
    at::Tensor first = at::cat({xf.sum(dims).to(at::kDouble),
                                at::full({1}, local, xf.options().dtype(at::kDouble))});
    allreduce_sum(g, first);
    at::Tensor count = first.narrow(0, channels, 1);
    double total = count.item<double>();
    TORCH_CHECK(total > 0, "SyncBatchNorm: no rows on any rank");
    at::Tensor mean = (first.narrow(0, 0, channels) / count).to(at::kFloat);
    at::Tensor centred = xf - per_channel(mean, xf);
    at::Tensor squares = centred.pow(2).sum(dims).to(at::kDouble);
    allreduce_sum(g, squares);
    at::Tensor var = (squares / total).to(at::kFloat);
    at::Tensor invstd = (var + eps).rsqrt();
    {
      at::NoGradGuard no_grad;
      running_mean.mul_(1.0 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
      double unbias = total > 1 ? total / (total - 1) : 1.0;
      running_var.mul_(1.0 - momentum).add_((var * unbias).to(running_var.scalar_type()), momentum);
    }
    at::Tensor y = centred * per_channel(invstd * weight.to(at::kFloat), xf) +
                   per_channel(bias.to(at::kFloat), xf);
    ctx->save_for_backward({x, weight, mean, invstd});
    ctx->saved_data["group"] = group;
    ctx->saved_data["total"] = total;
    return y.to(x.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor x = saved[0].to(at::kFloat);
    at::Tensor weight = saved[1];
    at::Tensor mean = saved[2];
    at::Tensor invstd = saved[3];
    Group* g = reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
    double total = ctx->saved_data["total"].toDouble();
    at::Tensor dy = grads[0].to(at::kFloat);
    auto dims = reduced_dims(x);
    int64_t channels = x.size(1);
    at::Tensor xmu = x - per_channel(mean, x);
    at::Tensor sum_dy = dy.sum(dims);
    at::Tensor sum_dy_xmu = (dy * xmu).sum(dims);
    at::Tensor grad_weight = (sum_dy_xmu * invstd).to(weight.scalar_type());
    at::Tensor grad_bias = sum_dy.clone().to(weight.scalar_type());
    at::Tensor both = at::cat({sum_dy, sum_dy_xmu});
    allreduce_sum(g, both);
    at::Tensor mean_dy = both.narrow(0, 0, channels) / total;
    at::Tensor mean_dy_xmu = both.narrow(0, channels, channels) / total;
    at::Tensor grad_input =
        (dy - per_channel(mean_dy, x) - xmu * per_channel(invstd * invstd * mean_dy_xmu, x)) *
        per_channel(invstd * weight.to(at::kFloat), x);
    return {grad_input.to(saved[0].scalar_type()), grad_weight, grad_bias, at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

extern "C" {

void fp_string_free(char* s) { std::free(s); }

// backend: 0 = Gloo, 1 = NCCL. is_server: this process hosts the TCPStore (rank 0 without
// torchrun's agent store). prefix: keys of this attempt (torchrun restarts reuse the store).
// listen_fd: a socket already bound to `port` that the server store listens on (the spawner
// hands rank 0 the one it bound, so no other process can take the port between); -1: none.
void* fp_group_new(int backend, const char* host, int port, int rank, int world, int is_server,
                   int listen_fd, int64_t timeout_ms, const char* prefix, int device_index,
                   char** err) {
  return guarded(err, static_cast<void*>(nullptr), [&]() -> void* {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = is_server != 0;
    opts.numWorkers = is_server != 0 ? std::optional<std::size_t>(world) : std::nullopt;
    opts.waitWorkers = false;
    opts.timeout = timeout;
    opts.multiTenant = true;
    if (is_server != 0 && listen_fd >= 0) {
      opts.masterListenFd = listen_fd;
    }
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto group = std::make_unique<Group>();
    group->store = store;
    group->rank = rank;
    group->world = world;
    if (backend == 0) {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname != nullptr && ifname[0] != '\0') {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(
          c10::make_intrusive<c10d::PrefixStore>("gloo", store), rank, world, options);
    } else {
#ifdef FUSIONPROT_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      (void)device_index;
      group->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl", store), rank, world, options);
#else
      (void)device_index;
      TORCH_CHECK(false, "this build has no NCCL (build with the dist crate's `nccl` feature)");
#endif
    }
    return group.release();
  });
}

void fp_group_free(void* g) { delete static_cast<Group*>(g); }

// op: 0 = sum, 1 = average (sum, then divided by the world size: Gloo has no AVG).
int fp_allreduce(void* g, at::Tensor** ts, size_t n, int op, char** err) {
  return guarded(err, -1, [&]() {
    auto group = static_cast<Group*>(g);
    // One collective per tensor: c10d reads a vector as one tensor per local device and would
    // sum them together (callers flatten into buckets first, so this is one call per bucket).
    for (auto& t : tensors_of(ts, n)) {
      std::vector<at::Tensor> one{t};
      group->backend->allreduce(one)->wait();
      if (op == 1) {
        at::NoGradGuard no_grad;
        t.div_(group->world);
      }
    }
    return 0;
  });
}

int fp_broadcast(void* g, at::Tensor** ts, size_t n, int root, char** err) {
  return guarded(err, -1, [&]() {
    auto group = static_cast<Group*>(g);
    auto tensors = tensors_of(ts, n);
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      group->backend->broadcast(one, opts)->wait();
    }
    return 0;
  });
}

// outputs: `world` tensors shaped like input, filled with every rank's input in rank order.
int fp_allgather(void* g, at::Tensor* input, at::Tensor** outputs, char** err) {
  return guarded(err, -1, [&]() {
    auto group = static_cast<Group*>(g);
    std::vector<std::vector<at::Tensor>> out{tensors_of(outputs, group->world)};
    std::vector<at::Tensor> in{*input};
    group->backend->allgather(out, in)->wait();
    return 0;
  });
}

int fp_barrier(void* g, char** err) {
  return guarded(err, -1, [&]() {
    static_cast<Group*>(g)->backend->barrier()->wait();
    return 0;
  });
}

// Store keys, for what is not a tensor (a rank's failure, a stop request).
int fp_store_set(void* g, const char* key, const uint8_t* value, size_t n, char** err) {
  return guarded(err, -1, [&]() {
    static_cast<Group*>(g)->store->set(key, std::vector<uint8_t>(value, value + n));
    return 0;
  });
}

// Adds `delta` to a counter key and returns the new value (-1 and *err on failure).
int64_t fp_store_add(void* g, const char* key, int64_t delta, char** err) {
  return guarded(err, static_cast<int64_t>(-1),
                 [&]() { return static_cast<Group*>(g)->store->add(key, delta); });
}

// Gives `t` the gradient `g` (a copy of the handle), or none when `g` is null: DDP's
// find_unused_parameters, where a parameter unused on this rank still receives the average.
int fp_set_grad(at::Tensor* t, at::Tensor* g, char** err) {
  return guarded(err, -1, [&]() {
    t->mutable_grad() = g != nullptr ? *g : at::Tensor();
    return 0;
  });
}

at::Tensor* fp_sync_batch_norm(void* g, at::Tensor* x, at::Tensor* weight, at::Tensor* bias,
                               at::Tensor* running_mean, at::Tensor* running_var, double momentum,
                               double eps, char** err) {
  return guarded(err, static_cast<at::Tensor*>(nullptr), [&]() {
    at::Tensor y =
        SyncBatchNorm::apply(*x, *weight, *bias, *running_mean, *running_var, momentum, eps,
                             reinterpret_cast<int64_t>(g));
    return new at::Tensor(std::move(y));
  });
}

}  // extern "C"
