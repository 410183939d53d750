# make -s -f lab/kobjs.mk OUT=<objtree> SRC=<srctree> DIR=<dir>
# What DIR's Kbuild file builds under OUT's .config, computed as
# scripts/Makefile.lib does: line 1 the objects (composites replaced by
# their parts), line 2 the subdirectories it descends into, both relative
# to DIR.  lab/series_check.py uses it to build only what a config builds.
include $(OUT)/include/config/auto.conf
srctree := $(SRC)
obj := $(DIR)
src := $(srctree)/$(obj)
SRCARCH := x86
BITS := $(if $(CONFIG_64BIT),64,32)
include $(or $(wildcard $(src)/Kbuild),$(src)/Makefile)

obj-m := $(filter-out $(obj-y),$(obj-m))
suffix-search = $(strip $(foreach s, $3, $($(1:%$(strip $2)=%$s))))
real-search = $(foreach m, $1, $(if $(call suffix-search, $m, $2, $3 -), \
	$(call suffix-search, $m, $2, $3), $m))

kobjs-print:
	@echo $(sort $(call real-search, $(filter-out %/, $(obj-y) $(obj-m)), .o, -objs -y -m))
	@echo $(sort $(subdir-y) $(subdir-m) $(patsubst %/,%, $(filter %/, $(obj-y) $(obj-m))))
