// CPU elementwise kernels: one strided loop per op, instantiated from the shared functors.
#include "core/cpu/loops.h"
#include "core/cpu/vec_math.h"
#include "core/kernels.h"

namespace ld::cpu {

namespace {

template <UnaryOp OP, class T>
void unary_t(const Tensor& out, const Tensor& x, double s_) {
  T* o = static_cast<T*>(out.raw_data());
  const T* a = static_cast<const T*>(x.raw_data());
  const T s = static_cast<T>(s_);
  strided_loop<2>(
      out.shape(), {out.strides(), broadcast_strides(x, out.shape())},
      [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
        T* op = o + off[0];
        const T* ap = a + off[1];
        if constexpr (OP == UnaryOp::GeluErf && std::is_same_v<T, float>) {
          // Vectorised (core/cpu/vec_math.h); element by element when strided, same bits.
          if (st[0] == 1 && st[1] == 1)
            gelu_erf_f32(ap, op, n);
          else
            for (int64_t i = 0; i < n; ++i) gelu_erf_f32(ap + i * st[1], op + i * st[0], 1);
        } else if (st[0] == 1 && st[1] == 1) {
          for (int64_t i = 0; i < n; ++i) op[i] = fn::unary<OP, T>(ap[i], s);
        } else {
          for (int64_t i = 0; i < n; ++i) op[i * st[0]] = fn::unary<OP, T>(ap[i * st[1]], s);
        }
      });
}

template <BinaryOp OP, class T>
void binary_t(const Tensor& out, const Tensor& x, const Tensor& y, double s_) {
  T* o = static_cast<T*>(out.raw_data());
  const T* a = static_cast<const T*>(x.raw_data());
  const T* b = static_cast<const T*>(y.raw_data());
  const T s = static_cast<T>(s_);
  strided_loop<3>(
      out.shape(),
      {out.strides(), broadcast_strides(x, out.shape()), broadcast_strides(y, out.shape())},
      [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
        T* op = o + off[0];
        const T* ap = a + off[1];
        const T* bp = b + off[2];
        if constexpr (OP == BinaryOp::GeluErfGrad && std::is_same_v<T, float>) {
          if (st[0] == 1 && st[1] == 1 && st[2] == 1)
            gelu_erf_grad_f32(ap, bp, op, n);
          else
            for (int64_t i = 0; i < n; ++i)
              gelu_erf_grad_f32(ap + i * st[1], bp + i * st[2], op + i * st[0], 1);
        } else if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
          for (int64_t i = 0; i < n; ++i) op[i] = fn::binary<OP, T>(ap[i], bp[i], s);
        } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
          const T bv = *bp;
          for (int64_t i = 0; i < n; ++i) op[i] = fn::binary<OP, T>(ap[i], bv, s);
        } else {
          for (int64_t i = 0; i < n; ++i)
            op[i * st[0]] = fn::binary<OP, T>(ap[i * st[1]], bp[i * st[2]], s);
        }
      });
}

template <CompareOp OP, class T>
void compare_t(const Tensor& out, const Tensor& x, const Tensor& y) {
  bool* o = static_cast<bool*>(out.raw_data());
  const T* a = static_cast<const T*>(x.raw_data());
  const T* b = static_cast<const T*>(y.raw_data());
  strided_loop<3>(
      out.shape(),
      {out.strides(), broadcast_strides(x, out.shape()), broadcast_strides(y, out.shape())},
      [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
        for (int64_t i = 0; i < n; ++i)
          o[off[0] + i * st[0]] = fn::compare<OP, T>(a[off[1] + i * st[1]], b[off[2] + i * st[2]]);
      });
}

}  // namespace

#define LD_UNARY_CASE(NAME) \
  case UnaryOp::NAME:       \
    return unary_t<UnaryOp::NAME, scalar_t>(out, x, s);

void unary(UnaryOp op, const Tensor& out, const Tensor& x, double s) {
  LD_DISPATCH_FLOAT(x.dtype(), "unary", [&] {
    switch (op) {
      // clang-format off
      LD_UNARY_CASE(Neg)
      LD_UNARY_CASE(Exp)
      LD_UNARY_CASE(Log)
      LD_UNARY_CASE(Sqrt)
      LD_UNARY_CASE(Rsqrt)
      LD_UNARY_CASE(Tanh)
      LD_UNARY_CASE(Relu)
      LD_UNARY_CASE(Sigmoid)
      LD_UNARY_CASE(Silu)
      LD_UNARY_CASE(GeluErf)
      LD_UNARY_CASE(GeluTanh)
      LD_UNARY_CASE(Abs)
      LD_UNARY_CASE(Square)
      LD_UNARY_CASE(AddScalar)
      LD_UNARY_CASE(MulScalar)
      LD_UNARY_CASE(PowScalar)
      LD_UNARY_CASE(RSubScalar)
      LD_UNARY_CASE(RDivScalar)
      LD_UNARY_CASE(Sign)
      // clang-format on
    }
    LD_FAIL("unary: unknown op {}", int(op));
  });
}

#define LD_BINARY_CASE(NAME) \
  case BinaryOp::NAME:       \
    return binary_t<BinaryOp::NAME, scalar_t>(out, a, b, s);

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double s) {
  LD_DISPATCH_FLOAT(a.dtype(), "binary", [&] {
    switch (op) {
      // clang-format off
      LD_BINARY_CASE(Add)
      LD_BINARY_CASE(Sub)
      LD_BINARY_CASE(Mul)
      LD_BINARY_CASE(Div)
      LD_BINARY_CASE(Maximum)
      LD_BINARY_CASE(Minimum)
      LD_BINARY_CASE(ReluGrad)
      LD_BINARY_CASE(SiluGrad)
      LD_BINARY_CASE(GeluErfGrad)
      LD_BINARY_CASE(GeluTanhGrad)
      LD_BINARY_CASE(TanhGrad)
      LD_BINARY_CASE(SigmoidGrad)
      LD_BINARY_CASE(PowGrad)
      // clang-format on
    }
    LD_FAIL("binary: unknown op {}", int(op));
  });
}

#define LD_COMPARE_CASE(NAME) \
  case CompareOp::NAME:       \
    return compare_t<CompareOp::NAME, scalar_t>(out, a, b);

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  LD_DISPATCH_ALL(a.dtype(), "compare", [&] {
    if constexpr (std::is_same_v<scalar_t, bf16> || std::is_same_v<scalar_t, f16>) {
      LD_FAIL("compare: {} not supported on the CPU", dtype_name(a.dtype()));
    } else {
      switch (op) {
        // clang-format off
        LD_COMPARE_CASE(Eq)
        LD_COMPARE_CASE(Ne)
        LD_COMPARE_CASE(Lt)
        LD_COMPARE_CASE(Le)
        LD_COMPARE_CASE(Gt)
        LD_COMPARE_CASE(Ge)
        // clang-format on
      }
    }
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  LD_DISPATCH_ALL(out.dtype(), "where", [&] {
    using T = scalar_t;
    T* o = static_cast<T*>(out.raw_data());
    const bool* c = static_cast<const bool*>(cond.raw_data());
    const T* x = static_cast<const T*>(a.raw_data());
    const T* y = static_cast<const T*>(b.raw_data());
    strided_loop<4>(
        out.shape(),
        {out.strides(), broadcast_strides(cond, out.shape()), broadcast_strides(a, out.shape()),
         broadcast_strides(b, out.shape())},
        [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& st) {
          for (int64_t i = 0; i < n; ++i)
            o[off[0] + i * st[0]] =
                c[off[1] + i * st[1]] ? x[off[2] + i * st[2]] : y[off[3] + i * st[3]];
        });
  });
}

void axpy_(const Tensor& out, const Tensor& x, double alpha) {
  LD_DISPATCH_FLOAT(out.dtype(), "axpy_", [&] {
    using T = scalar_t;
    T* o = static_cast<T*>(out.raw_data());
    const T* a = static_cast<const T*>(x.raw_data());
    const T al = static_cast<T>(alpha);
    strided_loop<2>(
        out.shape(), {out.strides(), broadcast_strides(x, out.shape())},
        [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
          for (int64_t i = 0; i < n; ++i) o[off[0] + i * st[0]] += al * a[off[1] + i * st[1]];
        });
  });
}

}  // namespace ld::cpu
