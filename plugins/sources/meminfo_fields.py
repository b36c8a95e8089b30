"""What each /proc/meminfo field and each memory-related /proc/vmstat counter means.

These explanations are part of the product: ``memdiag explain meminfo.Slab`` prints them. The
source of truth is the team's memory-accounting reference (sections 1-2). A ``since`` ending in
``?`` is an introduction version nobody has verified; ``""`` means the field is older than any
kernel memdiag expects to meet; ``"?"`` means the version is not known at all.

``overlaps`` names the fields of the same table that hold some of the same pages (one contains
the other, or they share pages). Adding two fields that overlap counts memory twice. The
relation is symmetric, and the totals MemTotal, SwapTotal and VmallocTotal are not listed as
overlapping everything they contain.

Only ``memdiag.facts`` (for its immutable record base) is imported: the meminfo source loads this
table on every run, and a dataclass would cost the ``dataclasses`` import and a code generation.
"""

from memdiag.facts import _Frozen


class Field(_Frozen):
    """One field: its name as the kernel prints it, kind, explanation, first kernel, overlaps."""

    __slots__ = ("name", "kind", "doc", "since", "overlaps")
    name: str
    kind: str  # "bytes" (kB lines; memdiag stores bytes) or "count" (page or event counts)
    doc: str
    since: str
    overlaps: tuple[str, ...]

    def __init__(self, name: str, kind: str, doc: str, since: str = "", overlaps: tuple[str, ...] = ()) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "doc", doc)
        object.__setattr__(self, "since", since)
        object.__setattr__(self, "overlaps", overlaps)


DOC_UNKNOWN_MEMINFO = (
    "A /proc/meminfo line this memdiag has no explanation for: kept as printed (kB lines as "
    "bytes); this memdiag does not know its meaning yet, so it takes no part in the accounting."
)

DOC_UNKNOWN_VMSTAT = (
    "A /proc/vmstat counter this memdiag has no explanation for: kept as printed; this memdiag "
    "does not know its meaning yet. Counters named nr_* are usually current page counts, the "
    "others usually events counted since boot."
)

_LRU_ANON = ("Active(anon)", "Inactive(anon)")
_LRU_FILE = ("Active(file)", "Inactive(file)")

FIELDS: tuple[Field, ...] = (
    # --- totals and free memory -----------------------------------------------------------
    Field("MemTotal", "bytes",
          "RAM the kernel manages: installed RAM minus what firmware and the kernel reserved at "
          "boot (kernel image, page descriptors, crashkernel). Balloon drivers that hand memory "
          "back by lowering it (virtio without deflate-on-OOM, Hyper-V since 5.11, Xen) make it "
          "shrink; VMware's vmw_balloon does not, so its pages stay inside and look used.",
          "", ("HighTotal", "LowTotal", "CmaTotal")),
    Field("MemFree", "bytes",
          "RAM nobody uses at all. It includes CmaFree; pages parked on the per-CPU free lists "
          "are probably left out. Low MemFree alone is normal: see MemAvailable.",
          "", ("HighFree", "LowFree", "CmaFree", "Unaccepted", "MemAvailable")),
    Field("MemAvailable", "bytes",
          "The kernel's estimate of how much memory new work could get without swapping: free "
          "memory above the reserves plus the easily reclaimable parts of the page cache and of "
          "reclaimable kernel memory. It is an estimate that overlaps MemFree, the file LRU and "
          "SReclaimable, not a sum to add to them. Absent before 3.14, except RHEL 6.6+ "
          "backports, which print it (as the last line) only after vm.meminfo_legacy_layout=0.",
          "3.14", ("MemFree", *_LRU_FILE, "SReclaimable", "KReclaimable")),
    Field("Buffers", "bytes",
          "Page cache of raw block devices: filesystem metadata and reads or writes that go to "
          "/dev/sdX directly. It sits on the file LRU lists and is not part of Cached.",
          "", ("Active", "Inactive", *_LRU_FILE, "Dirty", "Writeback")),
    Field("Cached", "bytes",
          "Page cache: file contents kept in RAM, plus all of Shmem (tmpfs, /dev/shm, shared "
          "memory), which cannot be dropped like cache. Cached includes Shmem, Mapped and the "
          "file and shmem huge pages, so never add those to it; it excludes Buffers and "
          "SwapCached.",
          "", ("Active", "Inactive", *_LRU_ANON, *_LRU_FILE, "Unevictable", "Shmem", "Mapped",
               "Dirty", "Writeback", "ShmemHugePages", "ShmemPmdMapped", "FileHugePages",
               "FilePmdMapped")),
    Field("SwapCached", "bytes",
          "Pages present both in RAM and in swap, so they can be dropped without writing them "
          "again. They sit on the anonymous LRU lists; the ones a process maps are also counted "
          "in AnonPages.",
          "", ("Active", "Inactive", *_LRU_ANON, "AnonPages")),
    # --- LRU lists ------------------------------------------------------------------------
    Field("Active", "bytes",
          "Page cache and anonymous pages used recently, which reclaim leaves alone longest. "
          "Active = Active(anon) + Active(file); together with Inactive and Unevictable it holds "
          "Buffers, Cached, SwapCached and AnonPages, so it is an alternative to adding those.",
          "", ("Active(anon)", "Active(file)", "Buffers", "Cached", "SwapCached", "AnonPages",
               "Shmem", "ActiveAnon", "ActiveCache")),
    Field("Inactive", "bytes",
          "Page cache and anonymous pages not used recently: the first candidates for reclaim. "
          "Inactive = Inactive(anon) + Inactive(file); like Active it overlaps Buffers, Cached, "
          "SwapCached and AnonPages.",
          "", ("Inactive(anon)", "Inactive(file)", "Buffers", "Cached", "SwapCached",
               "AnonPages", "Shmem")),
    Field("Active(anon)", "bytes",
          "Recently used swap-backed pages: process heap and stacks, Shmem/tmpfs and swap "
          "cache. Reclaiming them needs swap (or zswap/zram). Part of Active.",
          "2.6.28?", ("Active", "AnonPages", "Shmem", "SwapCached", "Cached")),
    Field("Inactive(anon)", "bytes",
          "Swap-backed pages (anonymous memory, Shmem/tmpfs, swap cache) not used recently; "
          "these are swapped out first. Part of Inactive.",
          "2.6.28?", ("Inactive", "AnonPages", "Shmem", "SwapCached", "Cached")),
    Field("Active(file)", "bytes",
          "Recently used page cache that is backed by files (Buffers included, Shmem not). "
          "Reclaimable, but likely to be read again soon. Part of Active.",
          "2.6.28?", ("Active", "Cached", "Buffers", "MemAvailable")),
    Field("Inactive(file)", "bytes",
          "File page cache not used recently: the cheapest memory to reclaim, most of which "
          "MemAvailable counts as available. Lazily freed (MADV_FREE) anonymous pages are "
          "reported to move here too. Part of Inactive.",
          "2.6.28?", ("Inactive", "Cached", "Buffers", "MemAvailable")),
    Field("Unevictable", "bytes",
          "Pages reclaim may not touch: mlock()ed memory, ramfs, SHM_LOCK'ed shared memory, "
          "secretmem. It contains Mlocked, and its pages are also counted in AnonPages, Cached "
          "or Shmem.",
          "2.6.28?", ("Mlocked", "Cached", "Shmem", "AnonPages")),
    Field("Mlocked", "bytes",
          "Pages locked in RAM with mlock() or MAP_LOCKED. Normally a subset of Unevictable; "
          "the pages are also anonymous or mapped file pages.",
          "2.6.28?", ("Unevictable", "AnonPages", "Mapped")),
    # --- 32-bit highmem, NOMMU -------------------------------------------------------------
    Field("HighTotal", "bytes",
          "32-bit kernels with highmem only: the part of MemTotal the kernel cannot keep mapped "
          "permanently. HighTotal + LowTotal = MemTotal.",
          "", ("MemTotal", "HighFree")),
    Field("HighFree", "bytes",
          "32-bit highmem kernels only: the free part of HighTotal. HighFree + LowFree = MemFree.",
          "", ("MemFree", "HighTotal")),
    Field("LowTotal", "bytes",
          "32-bit highmem kernels only: memory the kernel maps permanently, where its own data "
          "(slab, page tables, stacks) must live. LowTotal = MemTotal - HighTotal.",
          "", ("MemTotal", "LowFree")),
    Field("LowFree", "bytes",
          "32-bit highmem kernels only: the free part of LowTotal. Running out of it can cause "
          "OOM kills even while HighFree is large.",
          "", ("MemFree", "LowTotal")),
    Field("MmapCopy", "bytes",
          "Kernels without an MMU (small embedded systems) only: memory holding private copies "
          "of mapped files, which such systems cannot share.",
          ""),
    # --- swap ------------------------------------------------------------------------------
    Field("SwapTotal", "bytes", "Size of all active swap areas. Disk (or zram) space, not RAM.",
          "", ("SwapFree",)),
    Field("SwapFree", "bytes",
          "Unused swap space. SwapTotal - SwapFree is memory that was pushed out of RAM.",
          "", ("SwapTotal",)),
    Field("Zswap", "bytes",
          "RAM used by zswap's pool of compressed swapped-out pages. This is real RAM outside "
          "the LRU lists and Slab, so it must be added when accounting for RAM.",
          "5.19"),
    Field("Zswapped", "bytes",
          "Uncompressed size of the pages zswap holds. Not RAM in use: Zswapped / Zswap is the "
          "compression ratio.",
          "5.19"),
    # --- page cache state and user memory ----------------------------------------------------
    Field("Dirty", "bytes",
          "Cached file data changed in RAM and waiting to be written to disk. Part of Cached "
          "and Buffers, not extra memory.",
          "", ("Cached", "Buffers")),
    Field("Writeback", "bytes",
          "Pages being written to disk right now. Part of Cached and Buffers; a large value that "
          "stays large means storage cannot keep up.",
          "", ("Cached", "Buffers")),
    Field("AnonPages", "bytes",
          "Anonymous memory mapped into processes (heap, stacks, private copies), including "
          "AnonHugePages. It leaves out Shmem (which is in Cached) and swap cache that no "
          "process maps.",
          "", ("Active", "Inactive", *_LRU_ANON, "Unevictable", "Mlocked", "AnonHugePages",
               "SwapCached")),
    Field("Mapped", "bytes",
          "Page cache and Shmem pages some process has mapped: shared libraries, mmap()ed files, "
          "mapped shared memory. A subset of Cached, not extra memory.",
          "", ("Cached", "Shmem", "Mlocked", "ShmemPmdMapped", "FilePmdMapped")),
    Field("Shmem", "bytes",
          "Shared memory: tmpfs and /dev/shm files, SysV and POSIX shared memory, shared "
          "anonymous mappings, memfd. Part of Cached (and of Mapped where mapped), yet it cannot "
          "be dropped like cache; it leaves RAM only by swapping or by deleting the files.",
          "2.6.32?", ("Cached", "Active", "Inactive", *_LRU_ANON, "Unevictable", "Mapped",
                      "ShmemHugePages", "ShmemPmdMapped")),
    # --- kernel memory -----------------------------------------------------------------------
    Field("KReclaimable", "bytes",
          "Kernel memory the kernel can free under pressure: SReclaimable plus other "
          "reclaimable kernel allocations. It contains SReclaimable; only KReclaimable - "
          "SReclaimable lies outside Slab.",
          "4.20?", ("SReclaimable", "MemAvailable")),
    Field("Slab", "bytes",
          "Kernel object caches: dentries, inodes, kmalloc() memory, network and driver "
          "structures. Slab = SReclaimable + SUnreclaim.",
          "", ("SReclaimable", "SUnreclaim")),
    Field("SReclaimable", "bytes",
          "The part of Slab the kernel can shrink under pressure, mostly dentry and inode "
          "caches. Counted in Slab and in KReclaimable; MemAvailable counts part of it.",
          "2.6.19?", ("Slab", "KReclaimable", "MemAvailable")),
    Field("SUnreclaim", "bytes",
          "The part of Slab that cannot be freed on demand. A large or growing value points to "
          "a kernel or driver leak; /proc/slabinfo or slabtop shows which cache. Part of Slab.",
          "2.6.19?", ("Slab",)),
    Field("KernelStack", "bytes",
          "Kernel stacks of all threads. With CONFIG_VMAP_STACK the stacks come from vmalloc, "
          "so on 5.3+ kernels they are counted in VmallocUsed as well: do not add both.",
          "2.6.32?", ("VmallocUsed",)),
    Field("ShadowCallStack", "bytes",
          "Shadow call stacks, a kernel hardening feature (CONFIG_SHADOW_CALL_STACK, mainly "
          "arm64). Kernel memory next to KernelStack, not part of it.",
          "5.8?"),
    Field("PageTables", "bytes",
          "Page tables that map processes' virtual memory. Grows with mapped memory and with "
          "many processes mapping the same large region without huge pages.",
          ""),
    Field("SecPageTables", "bytes",
          "Secondary page tables: KVM's mappings of guest memory and IOMMU page tables. Kernel "
          "memory outside PageTables.",
          "6.0?"),
    Field("Quicklists", "bytes",
          "Old kernels with CONFIG_QUICKLIST (some ia64, sparc64 and sh builds): freed page-table "
          "pages kept for reuse. Small kernel memory.",
          ""),
    Field("NFS_Unstable", "bytes",
          "NFS data written to the server but not yet committed to its disk. Always 0 on recent "
          "kernels (since about 5.8), which probably count such pages under Writeback instead.",
          ""),
    Field("Bounce", "bytes",
          "Bounce buffers: copies made for devices that cannot reach all of memory. Small, "
          "outside the LRU lists.",
          ""),
    Field("WritebackTmp", "bytes",
          "Temporary buffers FUSE filesystems use while writing back. Small, outside the LRU "
          "lists.",
          ""),
    Field("CommitLimit", "bytes",
          "How much memory the kernel will promise out when vm.overcommit_memory=2 (derived "
          "from RAM, the overcommit ratio and swap). Virtual memory, not RAM; enforced only in "
          "that mode.",
          ""),
    Field("Committed_AS", "bytes",
          "Memory all processes have reserved, whether or not they ever touch it. Virtual, not "
          "RAM: far above MemTotal is normal unless vm.overcommit_memory=2, where it cannot "
          "pass CommitLimit.",
          ""),
    Field("VmallocTotal", "bytes",
          "Size of the kernel's vmalloc address range (about 32 TiB on x86_64). Address space, "
          "not RAM; says nothing about use.",
          ""),
    Field("VmallocUsed", "bytes",
          "Meaning depends on the kernel: up to 4.3 it sums the sizes of vmalloc, vmap and "
          "ioremap areas (address space that can exceed RAM); from 4.4 to 5.2 it is always 0; "
          "from 5.3 it counts pages really allocated by vmalloc. On 5.3+ with CONFIG_VMAP_STACK "
          "it already includes KernelStack, which is double-counted if both are added.",
          "", ("KernelStack",)),
    Field("VmallocChunk", "bytes",
          "Largest free piece of the vmalloc address range on old kernels; always 0 since 4.4. "
          "Address space, not RAM.",
          ""),
    Field("Percpu", "bytes",
          "Memory backing the kernel's per-CPU variables, which grows with the number of CPUs. "
          "The per-CPU allocator's own bookkeeping is left out.",
          "4.19?"),
    Field("EarlyMemtestBad", "bytes",
          "RAM the boot-time memory test (memtest= kernel parameter) found faulty and kept out "
          "of use. Printed only when that test ran.",
          "6.4?"),
    Field("HardwareCorrupted", "bytes",
          "Pages taken out of service after the hardware reported memory errors "
          "(CONFIG_MEMORY_FAILURE). Anything but 0 points at failing RAM.",
          ""),
    # --- huge pages in the page cache and anonymous memory -----------------------------------
    Field("AnonHugePages", "bytes",
          "Anonymous memory backed by transparent huge pages. Part of AnonPages: never add the "
          "two.",
          "2.6.38?", ("AnonPages",)),
    Field("ShmemHugePages", "bytes",
          "Shmem and tmpfs memory backed by huge pages. Part of Shmem, and so of Cached.",
          "4.8?", ("Shmem", "Cached", "ShmemPmdMapped")),
    Field("ShmemPmdMapped", "bytes",
          "The part of ShmemHugePages that processes map as whole huge pages. Also part of "
          "Mapped.",
          "4.8?", ("ShmemHugePages", "Shmem", "Mapped", "Cached")),
    Field("FileHugePages", "bytes",
          "File page cache held in huge pages. Part of Cached.",
          "5.4?", ("Cached", "FilePmdMapped")),
    Field("FilePmdMapped", "bytes",
          "The part of FileHugePages that processes map as whole huge pages. Also part of "
          "Mapped.",
          "5.4?", ("FileHugePages", "Mapped", "Cached")),
    # --- CMA, confidential VMs, balloons ------------------------------------------------------
    Field("CmaTotal", "bytes",
          "Memory set aside at boot for the Contiguous Memory Allocator, which serves devices "
          "needing large physically contiguous buffers. Part of MemTotal; movable pages may use "
          "it while devices do not.",
          "3.19?", ("MemTotal", "CmaFree")),
    Field("CmaFree", "bytes",
          "The free part of CmaTotal, included in MemFree. Device buffers taken with cma_alloc() "
          "show up in no other field: only CmaTotal - CmaFree hints at them.",
          "3.19?", ("MemFree", "CmaTotal")),
    Field("Unaccepted", "bytes",
          "Confidential VMs (Intel TDX, AMD SEV-SNP) only: memory the guest has not yet accepted "
          "from the host; it is accepted when first needed. Probably counted inside MemFree "
          "(not verified).",
          "6.5?", ("MemFree",)),
    Field("Balloon", "bytes",
          "Memory balloon drivers (virtio, Hyper-V, Xen, VMware) took from this guest for the "
          "hypervisor; before 6.15 no meminfo line shows it. Drivers that do not lower MemTotal "
          "make these pages look used. VMware's 2 MiB balloon pages may be missing from it (not "
          "verified).",
          "6.15"),
    # --- hugetlb pools ---------------------------------------------------------------------
    Field("HugePages_Total", "count",
          "Number of huge pages (of size Hugepagesize, the default size) in the hugetlb pool, "
          "used or not. A page count, not kB: multiply by Hugepagesize. Pool pages are "
          "unavailable to normal programs even when free.",
          "", ("HugePages_Free", "HugePages_Rsvd", "HugePages_Surp", "Hugetlb")),
    Field("HugePages_Free", "count",
          "Number of default-size pool huge pages no mapping has faulted in yet. A page count, "
          "not kB; free huge pages still cannot be used by normal programs.",
          "", ("HugePages_Total", "HugePages_Rsvd")),
    Field("HugePages_Rsvd", "count",
          "Number of default-size huge pages promised to mappings but not yet faulted in; they "
          "are still counted in HugePages_Free. A page count, not kB.",
          "", ("HugePages_Total", "HugePages_Free")),
    Field("HugePages_Surp", "count",
          "Number of default-size huge pages allocated beyond vm.nr_hugepages on demand (up to "
          "vm.nr_overcommit_hugepages). A page count, not kB; part of HugePages_Total.",
          "", ("HugePages_Total",)),
    Field("Hugepagesize", "bytes",
          "Size of the default huge page (2 MiB on x86_64), stored in bytes. A page size, not "
          "memory in use; other sizes appear only under /sys/kernel/mm/hugepages.",
          ""),
    Field("Hugetlb", "bytes",
          "Memory in hugetlb pools of all page sizes, used or free. Inside MemTotal but outside "
          "MemFree, the LRU lists and Cached. On kernels without it use HugePages_Total x "
          "Hugepagesize, which covers the default size only.",
          "4.16?", ("HugePages_Total",)),
    # --- the kernel's direct map: page-size statistics, not usage ------------------------------
    Field("DirectMap4k", "bytes",
          "RAM the kernel's own direct mapping covers with 4 KiB pages (x86, s390, powerpc). "
          "A page-size statistic, not memory use.",
          "2.6.26?"),
    Field("DirectMap2M", "bytes",
          "RAM the kernel's direct mapping covers with 2 MiB pages (x86_64, 32-bit PAE, "
          "powerpc radix). A page-size statistic, not memory use.",
          "2.6.26?"),
    Field("DirectMap4M", "bytes",
          "RAM the kernel's direct mapping covers with 4 MiB pages (32-bit x86 without PAE). "
          "A page-size statistic, not memory use.",
          "2.6.26?"),
    Field("DirectMap1G", "bytes",
          "RAM the kernel's direct mapping covers with 1 GiB pages (x86_64, powerpc radix). "
          "A page-size statistic, not memory use.",
          "2.6.26?"),
    Field("DirectMap64k", "bytes",
          "powerpc only: RAM the kernel's direct mapping covers with 64 KiB pages. A page-size "
          "statistic, not memory use.",
          "4.20?"),
    Field("DirectMap1M", "bytes",
          "s390 only: RAM the kernel's direct mapping covers with 1 MiB pages. A page-size "
          "statistic, not memory use.",
          "?"),
    Field("DirectMap2G", "bytes",
          "s390 only: RAM the kernel's direct mapping covers with 2 GiB pages. A page-size "
          "statistic, not memory use.",
          "?"),
    # --- 2.4-era kernels (RHEL 3 and older); gone in 2.6 -------------------------------------
    Field("MemShared", "bytes",
          "2.4-era kernels only: shared memory; the closest later field is Shmem.",
          ""),
    Field("ActiveAnon", "bytes",
          "Some 2.4-era vendor kernels (RHEL 3) only: the anonymous part of Active.",
          "", ("Active",)),
    Field("ActiveCache", "bytes",
          "Some 2.4-era vendor kernels (RHEL 3) only: the page-cache part of Active.",
          "", ("Active",)),
    Field("Inact_dirty", "bytes",
          "2.4-era kernels only: inactive pages that must be written out before reuse. Part of "
          "what later kernels call Inactive.",
          ""),
    Field("Inact_laundry", "bytes",
          "Some 2.4-era vendor kernels (RHEL 3) only: inactive pages being written out. Part of "
          "what later kernels call Inactive.",
          ""),
    Field("Inact_clean", "bytes",
          "2.4-era kernels only: inactive clean pages that can be reused at once. Part of what "
          "later kernels call Inactive.",
          ""),
    Field("Inact_target", "bytes",
          "2.4-era kernels only: how much inactive memory the VM aimed to keep. A target, not "
          "memory in use.",
          ""),
)


def _pages(what: str) -> str:
    return f"Unit: pages, current level. {what}"


def _events(what: str) -> str:
    return f"Unit: events counted since boot. {what}"


_ZONE_LRU = ("nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file",
             "nr_zone_active_file", "nr_zone_unevictable")

VMSTAT: tuple[Field, ...] = (
    Field("nr_free_pages", "count", _pages("Free pages; the same as MemFree."), "",
          ("nr_free_cma",)),
    *(
        Field(zone_name, "count",
              _pages(f"The {zone_name[8:]} LRU list counted per memory zone and summed; the "
                     f"same pages as {zone_name.replace('zone_', '')}, not extra."),
              "4.8?", (zone_name.replace("zone_", ""),))
        for zone_name in _ZONE_LRU
    ),
    Field("nr_zone_write_pending", "count",
          _pages("Dirty and under-writeback pages counted per zone and summed; overlaps "
                 "nr_dirty and nr_writeback."),
          "4.8?", ("nr_dirty", "nr_writeback")),
    Field("nr_inactive_anon", "count", _pages("Inactive(anon) in pages."), "",
          ("nr_zone_inactive_anon",)),
    Field("nr_active_anon", "count", _pages("Active(anon) in pages."), "",
          ("nr_zone_active_anon",)),
    Field("nr_inactive_file", "count", _pages("Inactive(file) in pages."), "",
          ("nr_zone_inactive_file",)),
    Field("nr_active_file", "count", _pages("Active(file) in pages."), "",
          ("nr_zone_active_file",)),
    Field("nr_unevictable", "count", _pages("Unevictable in pages; contains nr_mlock."), "",
          ("nr_zone_unevictable", "nr_mlock")),
    Field("nr_mlock", "count", _pages("Mlocked in pages; part of nr_unevictable."), "",
          ("nr_unevictable",)),
    Field("nr_isolated_anon", "count",
          _pages("Anonymous pages taken off the LRU lists for a moment by reclaim or "
                 "migration; they explain small gaps in LRU sums."),
          "", ()),
    Field("nr_isolated_file", "count",
          _pages("File pages taken off the LRU lists for a moment by reclaim or migration."),
          "", ()),
    Field("nr_slab_reclaimable", "count", _pages("SReclaimable in pages."), ""),
    Field("nr_slab_unreclaimable", "count", _pages("SUnreclaim in pages."), ""),
    Field("nr_kernel_misc_reclaimable", "count",
          _pages("Reclaimable kernel memory outside slab: KReclaimable - SReclaimable."),
          "4.20?"),
    Field("nr_anon_pages", "count",
          _pages("AnonPages in pages; contains nr_anon_transparent_hugepages."), "",
          ("nr_anon_transparent_hugepages",)),
    Field("nr_anon_transparent_hugepages", "count",
          "Anonymous memory in transparent huge pages (AnonHugePages); part of nr_anon_pages. "
          "Unit: on recent kernels base pages, on older ones (roughly before 5.x, not verified) "
          "the number of huge pages.",
          "2.6.38?", ("nr_anon_pages",)),
    Field("nr_mapped", "count", _pages("Mapped in pages; part of nr_file_pages."), "",
          ("nr_file_pages",)),
    Field("nr_file_pages", "count",
          _pages("All page cache: Cached + Buffers + SwapCached, Shmem included."), "",
          ("nr_mapped", "nr_shmem", "nr_dirty", "nr_writeback", "nr_file_hugepages",
           "nr_shmem_hugepages")),
    Field("nr_dirty", "count", _pages("Dirty in pages; part of nr_file_pages."), "",
          ("nr_file_pages", "nr_zone_write_pending")),
    Field("nr_writeback", "count", _pages("Writeback in pages; part of nr_file_pages."), "",
          ("nr_file_pages", "nr_zone_write_pending")),
    Field("nr_writeback_temp", "count", _pages("WritebackTmp (FUSE) in pages."), ""),
    Field("nr_shmem", "count", _pages("Shmem in pages; part of nr_file_pages."), "2.6.32?",
          ("nr_file_pages", "nr_shmem_hugepages")),
    Field("nr_shmem_hugepages", "count",
          "ShmemHugePages; part of nr_shmem. Unit: base pages on recent kernels, huge pages on "
          "older ones (not verified when this changed).",
          "4.8?", ("nr_shmem", "nr_file_pages")),
    Field("nr_file_hugepages", "count",
          "FileHugePages; part of nr_file_pages. Unit: base pages on recent kernels, huge pages "
          "on older ones (not verified when this changed).",
          "5.4?", ("nr_file_pages",)),
    Field("nr_kernel_stack", "count",
          "KernelStack. Unit: KiB on current kernels, despite the nr_ prefix (checked on 6.18); "
          "on older kernels (before about 4.9) the number of stacks.",
          "2.6.32?"),
    Field("nr_page_table_pages", "count", _pages("PageTables in pages."), ""),
    Field("nr_sec_page_table_pages", "count", _pages("SecPageTables (KVM, IOMMU) in pages."),
          "6.0?"),
    Field("nr_bounce", "count", _pages("Bounce in pages."), ""),
    Field("nr_unstable", "count", _pages("NFS_Unstable in pages; always 0 since about 5.8."), ""),
    Field("nr_free_cma", "count", _pages("CmaFree in pages; part of nr_free_pages."),
          "3.19?", ("nr_free_pages",)),
    Field("nr_zspages", "count",
          _pages("Pages zsmalloc holds for zram and zswap; RAM no meminfo field shows for zram. "
                 "Do not add it to Zswap again."),
          "4.8?"),
    Field("nr_balloon_pages", "count",
          _pages("The meminfo Balloon line in pages: memory balloon drivers took for the "
                 "hypervisor."),
          "6.15"),
    Field("nr_dirty_threshold", "count",
          _pages("Dirty page cache above which writers are throttled."), ""),
    Field("nr_dirty_background_threshold", "count",
          _pages("Dirty page cache above which background writeback starts."), ""),
    Field("nr_memmap_pages", "count",
          _pages("Pages holding the page descriptors (struct page) allocated after boot, such "
                 "as for hot-added memory (not verified)."),
          "6.11?"),
    Field("nr_memmap_boot_pages", "count",
          _pages("Pages holding the page descriptors set up at boot; probably outside MemTotal "
                 "(not verified)."),
          "6.11?"),
    Field("pgpgin", "count",
          "Data read from block devices since boot. Unit: KiB, despite the name, not pages or "
          "events.",
          ""),
    Field("pgpgout", "count",
          "Data written to block devices since boot. Unit: KiB, despite the name, not pages or "
          "events.",
          ""),
    Field("pswpin", "count", _events("Pages read back in from swap, one event per page."), ""),
    Field("pswpout", "count", _events("Pages written out to swap, one event per page."), ""),
    Field("pgfault", "count", _events("Page faults of all kinds, most of them cheap."), ""),
    Field("pgmajfault", "count",
          _events("Page faults that had to wait for disk or swap; a fast rise means thrashing."),
          ""),
    Field("pgscan_kswapd", "count",
          _events("Pages kswapd examined in background reclaim, one event per page."), "4.8?"),
    Field("pgscan_direct", "count",
          _events("Pages examined by direct reclaim, which stalls the allocating process; one "
                  "event per page."),
          "4.8?"),
    Field("pgsteal_kswapd", "count",
          _events("Pages kswapd actually reclaimed, one event per page."), "4.8?"),
    Field("pgsteal_direct", "count",
          _events("Pages direct reclaim actually reclaimed, one event per page."), "4.8?"),
    Field("pgscan_direct_throttle", "count",
          _events("Times a direct reclaimer was throttled."), "?"),
    Field("allocstall", "count",
          _events("Allocations that had to enter direct reclaim; older kernels only, later "
                  "split into allocstall_<zone>."),
          ""),
    *(
        Field(f"allocstall_{zone}", "count",
              _events(f"Allocations from the {zone} zone that had to enter direct reclaim."),
              "?" if zone == "device" else "4.10?")
        for zone in ("dma", "dma32", "normal", "movable", "device")
    ),
    Field("compact_stall", "count",
          _events("Allocations that stalled to compact memory for a contiguous block."),
          "2.6.35?"),
    Field("compact_fail", "count", _events("Compaction stalls that did not yield the block."),
          "2.6.35?"),
    Field("compact_success", "count", _events("Compaction stalls that yielded the block."),
          "2.6.35?"),
    Field("oom_kill", "count", _events("Processes killed by the OOM killer."), "4.13?"),
    Field("thp_fault_alloc", "count",
          _events("Page faults served with a transparent huge page."), "2.6.39?"),
    Field("thp_fault_fallback", "count",
          _events("Page faults that wanted a transparent huge page but got small pages."),
          "2.6.39?"),
    Field("thp_collapse_alloc", "count",
          _events("Huge pages khugepaged allocated to collapse small pages into."), "2.6.39?"),
    Field("workingset_refault", "count",
          _events("Evicted page-cache pages read back soon after: the cache is too small. "
                  "Later kernels split it into _anon and _file, one event per page."),
          "3.15?"),
    Field("workingset_refault_anon", "count",
          _events("Evicted anonymous pages needed again soon after, one event per page."),
          "5.9?"),
    Field("workingset_refault_file", "count",
          _events("Evicted file pages read back soon after, one event per page."), "5.9?"),
    Field("balloon_inflate", "count",
          _events("Pages balloon drivers took; inflate - deflate is the current balloon size "
                  "in 4 KiB pages (a VMware 2 MiB page counts 512)."),
          "3.18?"),
    Field("balloon_deflate", "count",
          _events("Pages balloon drivers gave back to the guest, one event per page."), "3.18?"),
    Field("balloon_migrate", "count",
          _events("Balloon pages moved to defragment memory; does not change the balloon size."),
          "3.18?"),
    Field("zswpin", "count", _events("Pages loaded back from zswap, one event per page."),
          "6.0?"),
    Field("zswpout", "count", _events("Pages stored into zswap, one event per page."), "6.0?"),
    Field("drop_pagecache", "count",
          _events("Times someone wrote 1 or 3 to /proc/sys/vm/drop_caches."), "?"),
    Field("drop_slab", "count",
          _events("Times someone wrote 2 or 3 to /proc/sys/vm/drop_caches."), "?"),
    Field("slabs_scanned", "count",
          _events("Slab objects examined by shrinkers during reclaim."), ""),
)

#: Lookup by the name the kernel prints.
MEMINFO_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
VMSTAT_BY_NAME: dict[str, Field] = {f.name: f for f in VMSTAT}
