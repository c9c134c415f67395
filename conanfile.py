# Conan 2 recipe of the header-only auxl library.
#
#   conan create . -pr:a conan/profiles/debian12     # offline, with Debian's system packages
#
# The package installs auxl's own CMake config (share/cmake/auxl/auxlConfig.cmake), which finds
# every dependency with find_dependency; Conan is told to use it instead of generating one
# (cmake_find_mode "none" + builddirs), so the same config works with Conan-built dependencies
# and with the system ones a profile's [platform_requires] stands in for.
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import load


class AuxlConan(ConanFile):
    name = "auxl"
    description = "Header-only C++20 library for auxiliary learning (MAXL, RL-AUX, GCS, MAOAL, IT-MTL, DTG-style)"
    topics = ("machine-learning", "auxiliary-learning", "multi-task-learning", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*"
    no_copy_source = True
    default_options = {"boost/*:header_only": True}

    def set_version(self):
        # One source of truth: project(auxl VERSION x.y.z) in CMakeLists.txt.
        text = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = re.search(r"project\(auxl VERSION (\d+\.\d+\.\d+)", text).group(1)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # Ranges, so that a profile's [platform_requires] (exact system versions) can replace them.
        self.requires("eigen/[>=3.4.0 <6]")
        self.requires("xtensor/[>=0.24.3 <0.25]")
        self.requires("xtensor-blas/[>=0.20.0 <0.21]")
        self.requires("openblas/[>=0.3.21 <0.4]")
        self.requires("boost/[>=1.74.0]")
        self.requires("zlib/[>=1.2.13 <2]")

    def build_requirements(self):
        self.tool_requires("cmake/[>=3.21 <4]")

    def validate(self):
        check_min_cppstd(self, 20)

    def package_id(self):
        self.info.clear()

    def generate(self):
        tc = CMakeToolchain(self)
        for option in ("AUXL_BUILD_TESTS", "AUXL_BUILD_EXAMPLES", "AUXL_BUILD_BENCHMARKS"):
            tc.cache_variables[option] = False
        tc.cache_variables["AUXL_INSTALL"] = True
        tc.generate()

    def build(self):
        pass  # headers only: package() runs CMake's install, which writes the package config

    def package(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.install()

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs = [os.path.join("share", "cmake", "auxl")]
