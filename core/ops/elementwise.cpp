// Elementwise op layer: checks, broadcasting, backend dispatch and backward rules.
#include "core/ops/elementwise.h"

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops/reduce.h"
#include "core/profiler.h"

namespace ld {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    LD_CHECK(da == db || da == 1 || db == 1, "shapes {} and {} cannot be broadcast together",
             shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

static void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  LD_CHECK(a.defined() && b.defined(), "{}: undefined operand", op);
  LD_CHECK(a.dtype() == b.dtype(), "{}: dtype mismatch: {} vs {}", op, a.desc(), b.desc());
  LD_CHECK(a.device() == b.device(), "{}: device mismatch: {} vs {}", op, a.desc(), b.desc());
}

Tensor map_unary(UnaryOp op, const Tensor& x, double s) {
  LD_CHECK(x.defined(), "unary op on an undefined tensor");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  LD_DISPATCH_DEVICE(x, unary, op, out, x, s);
  return out;
}

Tensor map_binary(BinaryOp op, const Tensor& a, const Tensor& b, double s) {
  check_pair("binary op", a, b);
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape()), a.dtype(), a.device());
  LD_DISPATCH_DEVICE(a, binary, op, out, a, b, s);
  return out;
}

// ---- binary with autograd ----
static Tensor binary_op(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
  OpScope scope(name);  // name is a literal (profiler rows are keyed by its address)
  check_pair(name, a, b);
  Tensor out = map_binary(op, a, b);
  if (!needs_grad(a, b)) return out;
  Shape sa = a.shape(), sb = b.shape();
  bool ga = a.requires_grad(), gb = b.requires_grad();
  Tensor ad = a.detach(), bd = b.detach();
  return record(name, out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor da, db;
    switch (op) {
      case BinaryOp::Add:
        if (ga) da = sum_to(g, sa);
        if (gb) db = sum_to(g, sb);
        break;
      case BinaryOp::Sub:
        if (ga) da = sum_to(g, sa);
        if (gb) db = sum_to(map_unary(UnaryOp::Neg, g), sb);
        break;
      case BinaryOp::Mul:
        if (ga) da = sum_to(map_binary(BinaryOp::Mul, g, bd), sa);
        if (gb) db = sum_to(map_binary(BinaryOp::Mul, g, ad), sb);
        break;
      case BinaryOp::Div: {
        Tensor gdb = map_binary(BinaryOp::Div, g, bd);
        if (ga) da = sum_to(gdb, sa);
        if (gb)
          db = sum_to(map_unary(UnaryOp::Neg,
                                map_binary(BinaryOp::Mul, gdb, map_binary(BinaryOp::Div, ad, bd))),
                      sb);
        break;
      }
      case BinaryOp::Maximum: {
        // gradient to a where a >= b (ties to a), else to b
        Tensor take_a = compare(CompareOp::Ge, ad, bd);
        Tensor zero = Tensor::zeros({}, g.dtype(), g.device());
        if (ga) da = sum_to(where(take_a, g, zero), sa);
        if (gb) db = sum_to(where(take_a, zero, g), sb);
        break;
      }
      default:
        LD_FAIL("{}: no backward rule", name);
    }
    return {da, db};
  });
}

Tensor add(const Tensor& a, const Tensor& b) { return binary_op("add", BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op("sub", BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op("mul", BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op("div", BinaryOp::Div, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary_op("maximum", BinaryOp::Maximum, a, b);
}

// ---- unary with autograd ----
// Backward of each unary op, from x (input), y (output) and g.
static Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g,
                             double s) {
  switch (op) {
    case UnaryOp::Neg:
      return map_unary(UnaryOp::Neg, g);
    case UnaryOp::Exp:
      return map_binary(BinaryOp::Mul, g, y);
    case UnaryOp::Log:
      return map_binary(BinaryOp::Div, g, x);
    case UnaryOp::Sqrt:
      return map_binary(BinaryOp::Div, g, map_unary(UnaryOp::MulScalar, y, 2));
    case UnaryOp::Rsqrt:  // d/dx x^-1/2 = -1/2 y^3
      return map_binary(BinaryOp::Mul, g,
                        map_unary(UnaryOp::MulScalar, map_unary(UnaryOp::PowScalar, y, 3), -0.5));
    case UnaryOp::Tanh:
      return map_binary(BinaryOp::TanhGrad, y, g);
    case UnaryOp::Sigmoid:
      return map_binary(BinaryOp::SigmoidGrad, y, g);
    case UnaryOp::Relu:
      return map_binary(BinaryOp::ReluGrad, x, g);
    case UnaryOp::Silu:
      return map_binary(BinaryOp::SiluGrad, x, g);
    case UnaryOp::GeluErf:
      return map_binary(BinaryOp::GeluErfGrad, x, g);
    case UnaryOp::GeluTanh:
      return map_binary(BinaryOp::GeluTanhGrad, x, g);
    case UnaryOp::Abs:
      return map_binary(BinaryOp::Mul, g, map_unary(UnaryOp::Sign, x));
    case UnaryOp::Square:
      return map_binary(BinaryOp::Mul, g, map_unary(UnaryOp::MulScalar, x, 2));
    case UnaryOp::AddScalar:
      return g;
    case UnaryOp::MulScalar:
      return map_unary(UnaryOp::MulScalar, g, s);
    case UnaryOp::PowScalar:
      return map_binary(BinaryOp::PowGrad, x, g, s);
    case UnaryOp::RSubScalar:
      return map_unary(UnaryOp::Neg, g);
    case UnaryOp::RDivScalar:  // d/dx s/x = -s/x^2 = -y/x
      return map_unary(UnaryOp::Neg, map_binary(BinaryOp::Mul, g, map_binary(BinaryOp::Div, y, x)));
    case UnaryOp::Sign:
      return map_unary(UnaryOp::MulScalar, g, 0.0);
  }
  LD_FAIL("unary op {} has no backward rule", int(op));
}

static Tensor unary_op(const char* name, UnaryOp op, const Tensor& x, double s = 0) {
  OpScope scope(name);
  LD_CHECK(x.defined(), "{}: undefined operand", name);
  LD_CHECK(is_floating(x.dtype()), "{}: needs a floating tensor, got {}", name, x.desc());
  Tensor out = map_unary(op, x, s);
  if (!needs_grad(x)) return out;
  Tensor xd = x.detach(), yd = out.detach();
  return record(name, out, {x}, [=](const Tensor& g) {
    return std::vector<Tensor>{unary_backward(op, xd, yd, g, s)};
  });
}

Tensor add(const Tensor& a, double s) { return unary_op("add_scalar", UnaryOp::AddScalar, a, s); }
Tensor mul(const Tensor& a, double s) { return unary_op("mul_scalar", UnaryOp::MulScalar, a, s); }
Tensor rsub(const Tensor& a, double s) { return unary_op("rsub", UnaryOp::RSubScalar, a, s); }
Tensor rdiv(const Tensor& a, double s) { return unary_op("rdiv", UnaryOp::RDivScalar, a, s); }
Tensor neg(const Tensor& x) { return unary_op("neg", UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary_op("exp", UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op("log", UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary_op("sqrt", UnaryOp::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op("rsqrt", UnaryOp::Rsqrt, x); }
Tensor pow(const Tensor& x, double p) { return unary_op("pow", UnaryOp::PowScalar, x, p); }
Tensor square(const Tensor& x) { return unary_op("square", UnaryOp::Square, x); }
Tensor abs(const Tensor& x) { return unary_op("abs", UnaryOp::Abs, x); }
Tensor tanh(const Tensor& x) { return unary_op("tanh", UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op("sigmoid", UnaryOp::Sigmoid, x); }
Tensor relu(const Tensor& x) { return unary_op("relu", UnaryOp::Relu, x); }
Tensor silu(const Tensor& x) { return unary_op("silu", UnaryOp::Silu, x); }
Tensor gelu(const Tensor& x, bool approximate) {
  return unary_op("gelu", approximate ? UnaryOp::GeluTanh : UnaryOp::GeluErf, x);
}

// ---- comparisons, where ----
Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) {
  LD_OP_SCOPE("compare");
  check_pair("compare", a, b);
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape()), DType::b8, a.device());
  LD_DISPATCH_DEVICE(a, compare, op, out, a, b);
  return out;
}
Tensor compare(CompareOp op, const Tensor& a, double s) {
  return compare(op, a, Tensor::full({}, s, a.dtype(), a.device()));
}
Tensor eq(const Tensor& a, double s) { return compare(CompareOp::Eq, a, s); }
Tensor ne(const Tensor& a, double s) { return compare(CompareOp::Ne, a, s); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  LD_OP_SCOPE("where");
  check_pair("where", a, b);
  LD_CHECK(cond.dtype() == DType::b8, "where: condition must be bool, got {}", cond.desc());
  LD_CHECK(cond.device() == a.device(), "where: condition on {} but values on {}",
           cond.device().str(), a.device().str());
  Shape shape = broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape()));
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  LD_DISPATCH_DEVICE(a, where, out, cond, a, b);
  if (!needs_grad(a, b)) return out;
  Shape sa = a.shape(), sb = b.shape();
  bool ga = a.requires_grad(), gb = b.requires_grad();
  return record("where", out, {a, b}, [=](const Tensor& g) {
    Tensor zero = Tensor::zeros({}, g.dtype(), g.device());
    Tensor da = ga ? sum_to(where(cond, g, zero), sa) : Tensor();
    Tensor db = gb ? sum_to(where(cond, zero, g), sb) : Tensor();
    return std::vector<Tensor>{da, db};
  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  return where(mask, Tensor::full({}, value, x.dtype(), x.device()), x);
}

// ---- in place ----
void add_(Tensor& out, const Tensor& x, double alpha) {
  LD_OP_SCOPE("add_");
  check_pair("add_", out, x);
  broadcast_shapes(out.shape(), x.shape());
  LD_CHECK(broadcast_shapes(out.shape(), x.shape()) == out.shape(),
           "add_: {} does not broadcast into {}", x.desc(), out.desc());
  LD_DISPATCH_DEVICE(out, axpy_, out, x, alpha);
}

void mul_(Tensor& out, double s) {
  LD_OP_SCOPE("mul_");
  LD_DISPATCH_DEVICE(out, unary, UnaryOp::MulScalar, out, out, s);
}

}  // namespace ld
