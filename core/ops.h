// Everything an nn/ or lora/ module needs from the core.
#pragma once
#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/nn.h"
#include "core/ops/random.h"
#include "core/ops/reduce.h"
#include "core/ops/shape.h"
#include "core/tensor.h"
