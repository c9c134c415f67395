// auxl/core/xtensor.hpp — the one place that includes xtensor.
//
// xtensor 0.24/0.25 (Debian 12) keep their headers flat (<xtensor/xtensor.hpp>); 0.26 moved them
// into subfolders (<xtensor/containers/xtensor.hpp>).  Everything in auxl includes this shim, so a
// version change touches one file.
#pragma once

#if __has_include(<xtensor/containers/xtensor.hpp>)
#include <xtensor/containers/xadapt.hpp>
#include <xtensor/containers/xarray.hpp>
#include <xtensor/containers/xtensor.hpp>
#include <xtensor/views/xview.hpp>
#else
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>
#endif
