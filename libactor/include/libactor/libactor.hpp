#pragma once
/// @file
/// The whole public API of libactor's core.

#include "libactor/actor.hpp"   // IWYU pragma: export
#include "libactor/error.hpp"   // IWYU pragma: export
#include "libactor/system.hpp"  // IWYU pragma: export
#include "libactor/task.hpp"    // IWYU pragma: export
