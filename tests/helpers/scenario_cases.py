"""Bad-input cases: each edits a valid scenario in one place (the edit must apply, so a case
can't silently test the unedited file), with the exact key path and the telling words."""

from __future__ import annotations

from dataclasses import dataclass

FILE = "case.toml"


GEN = """\
[scenario]
name = "base"

[hardware]
topology = "full"

[[hardware.units]]
name = "gpu"
count = 4
peak = "19.5 TFLOP/s"
memory_bandwidth = "1.5 TB/s"
efficiency = 0.8

[hardware.link]
latency = "2 us"
bandwidth = "25 GB/s"

[workload.generator]
kind = "layered"
tasks = 20
width = 5
duration = "10 s"
"""


HARDWARE_EXPLICIT = """\
[scenario]
name = "explicit"

[hardware]
topology = "explicit"
switches = ["sw0"]

[[hardware.units]]
name = "gpu"
count = 3
preset = "v100"

[[hardware.links]]
a = "gpu0"
b = "sw0"
preset = "nvlink3"

[[hardware.links]]
a = "gpu1"
b = "sw0"
bandwidth = "10 GB/s"

[[hardware.links]]
a = "gpu2"
b = "sw0"
bandwidth = "10 GB/s"
"""


TASKS = HARDWARE_EXPLICIT + """
[[workload.tasks]]
name = "conv1"
flops = "2 GFLOP"
bytes = "40 MB"
unit = "gpu0"

[[workload.tasks]]
name = "conv2"
duration = "1 s"
after = ["conv1"]

[[workload.tasks]]
name = "fc"
duration = "1 s"
inputs = [{ from = "conv2", bytes = "4 MB" }]
"""


TWO_LEVEL = GEN.replace('topology = "full"', 'topology = "two_level"').replace(
    "count = 4", "count = 12") + """
[hardware.two_level]
units_per_node = 4
intra = { preset = "nvlink3" }
inter = { latency = "5 us", bandwidth = "25 GB/s" }
"""


@dataclass(frozen=True)
class Case:
    id: str
    base: str
    old: str
    new: str
    path: str
    words: tuple[str, ...]

    def text(self) -> str:
        if self.old:
            assert self.old in self.base, f"{self.id}: edit does not apply"
            return self.base.replace(self.old, self.new, 1)
        return self.base + self.new


def case(id: str, base: str, old: str, new: str, path: str, *words: str) -> Case:
    return Case(id, base, old, new, path, words)


CASES = [
    # -- keys and structure ------------------------------------------------------------
    case("misspelt top-level key", GEN, "", '\n[schedul]\nscheduler = "heft"\n',
         "schedul", "unknown key 'schedul'", "did you mean 'schedule'?"),
    case("misspelt unit key", GEN, "efficiency = 0.8", "efficency = 0.8",
         "hardware.units[0].efficency", "unknown key 'efficency'",
         "did you mean 'efficiency'?"),
    case("missing required section", GEN, "[scenario]\nname = \"base\"\n", "",
         "scenario", "expected a table, found nothing"),
    case("wrong type: string for count", GEN, "count = 4", 'count = "4"',
         "hardware.units[0].count", "expected an integer >= 1", "found '4'"),
    case("units written as a table", GEN, "[[hardware.units]]", "[hardware.units]",
         "hardware.units", "expected an array of tables", "found a table"),
    case("count 0", GEN, "count = 4", "count = 0",
         "hardware.units[0].count", "expected an integer >= 1, found 0"),
    case("unit without peak or preset", GEN, 'peak = "19.5 TFLOP/s"\n', "",
         "hardware.units[0].peak", "expected a compute rate > 0", "found nothing",
         "without a preset"),
    case("duplicate unit names", GEN, "[hardware.link]",
         '[[hardware.units]]\nname = "gpu2"\npreset = "v100"\n\n[hardware.link]',
         "hardware.units[1].name", "unique", "'gpu2' again"),
    # -- quantities and physical ranges ----------------------------------------------
    case("efficiency 1.5", GEN, "efficiency = 0.8", "efficiency = 1.5",
         "hardware.units[0].efficiency", "in (0, 1]", "found 1.5"),
    case("efficiency 0", GEN, "efficiency = 0.8", "efficiency = 0",
         "hardware.units[0].efficiency", "in (0, 1]", "found 0"),
    case("efficiency 150%", GEN, "efficiency = 0.8", 'efficiency = "150%"',
         "hardware.units[0].efficiency", "in (0, 1]", "found '150%'"),
    case("negative bandwidth", GEN, 'bandwidth = "25 GB/s"', 'bandwidth = "-25 GB/s"',
         "hardware.link.bandwidth", "a bandwidth > 0", "found '-25 GB/s'"),
    case("zero peak as a bare number", GEN, 'peak = "19.5 TFLOP/s"', "peak = 0",
         "hardware.units[0].peak", "a compute rate > 0", "found 0"),
    case("bandwidth given as a size", GEN, 'bandwidth = "25 GB/s"', 'bandwidth = "25 GB"',
         "hardware.link.bandwidth", "expected a bandwidth", "found '25 GB'",
         "did you mean '25 GB/s'?"),
    case("unparseable quantity", GEN, 'latency = "2 us"', 'latency = "fast"',
         "hardware.link.latency", "expected a duration", "found 'fast'"),
    case("negative overhead", GEN, "efficiency = 0.8", 'overhead = "-5 us"',
         "hardware.units[0].overhead", "a duration >= 0", "found '-5 us'"),
    case("spread of 1", GEN, 'duration = "10 s"', 'duration = "10 s"\nspread = 1',
         "workload.generator.spread", "in [0, 1)", "found 1"),
    case("nan latency", GEN, 'latency = "2 us"', "latency = nan",
         "hardware.link.latency", "finite", "found nan"),
    # -- presets and enums --------------------------------------------------------------
    case("unknown device preset", GEN, "efficiency = 0.8", 'preset = "a100_80"',
         "hardware.units[0].preset", "a device preset", "found 'a100_80'",
         "did you mean 'a100_80gb'?"),
    case("unknown link preset", GEN, 'latency = "2 us"', 'preset = "nvlnk3"',
         "hardware.link.preset", "a link preset", "did you mean 'nvlink3'?"),
    case("unknown topology", GEN, 'topology = "full"', 'topology = "fullmesh"',
         "hardware.topology", "one of 'full', 'ring', 'switch', 'two_level', 'explicit'",
         "found 'fullmesh'", "did you mean 'full'?"),
    case("unknown scheduler", GEN, "", '\n[schedule]\nscheduler = "HEFT"\n',
         "schedule.scheduler", "one of 'auto', 'static', 'heft', 'heft_contention', 'greedy'",
         "found 'HEFT'", "did you mean 'heft'?"),
    case("unknown network model", GEN, "", '\n[schedule]\nnetwork = "fiar"\n',
         "schedule.network", "one of 'fifo', 'fair', 'store_and_forward'", "found 'fiar'",
         "did you mean 'fair'?"),
    case("unknown generator kind", GEN, 'kind = "layered"', 'kind = "layerd"',
         "workload.generator.kind", "found 'layerd'", "did you mean 'layered'?"),
    # -- topologies ------------------------------------------------------------------------
    case("two_level without its table", GEN, 'topology = "full"', 'topology = "two_level"',
         "hardware.two_level", "expected a table, found nothing",
         "topology = 'two_level' needs it"),
    case("units_per_node not dividing", TWO_LEVEL, "units_per_node = 4",
         "units_per_node = 5", "hardware.two_level.units_per_node",
         "a divisor of the total unit count 12", "found 5"),
    case("two_level link without bandwidth", TWO_LEVEL,
         'inter = { latency = "5 us", bandwidth = "25 GB/s" }', 'inter = { latency = "5 us" }',
         "hardware.two_level.inter.bandwidth", "found nothing"),
    case("full topology without a link", GEN, '[hardware.link]\nlatency = "2 us"\n'
         'bandwidth = "25 GB/s"\n', "", "hardware.link",
         "a link table (topology 'full' with 4 units needs one)", "found nothing"),
    case("unit named like the generated switch",
         GEN.replace('topology = "full"', 'topology = "switch"'), "[hardware.link]",
         '[[hardware.units]]\nname = "switch"\npreset = "v100"\n\n[hardware.link]',
         "hardware.units[1].name", "a name other than the switches", "found 'switch'"),
    case("explicit without links", GEN, 'topology = "full"', 'topology = "explicit"',
         "hardware.links", "found nothing", "topology = 'explicit' needs it"),
    case("link to unknown endpoint", TASKS, 'a = "gpu2"', 'a = "gpu4"',
         "hardware.links[2].a", "a unit or switch", "found 'gpu4'",
         "did you mean 'gpu0'?"),
    case("link from a unit to itself", TASKS, 'a = "gpu2"\nb = "sw0"', 'a = "gpu2"\nb = "gpu2"',
         "hardware.links[2].b", "an endpoint other than a", "found 'gpu2'"),
    case("unreachable units", TASKS, 'a = "gpu2"\nb = "sw0"', 'a = "gpu1"\nb = "gpu0"',
         "hardware.links", "every unit reachable from every other",
         "no route from gpu0 to gpu2"),
    case("switch named like a unit", TASKS, 'switches = ["sw0"]', 'switches = ["sw0", "gpu1"]',
         "hardware.switches[1]", "found 'gpu1'"),
    # -- workload ---------------------------------------------------------------------------
    case("generator and tasks together", TASKS, "", '\n[workload.generator]\nkind = "chain"\n'
         'tasks = 3\nduration = "1 s"\n', "workload",
         "exactly one of 'generator' or 'tasks'", "found both 'generator' and 'tasks'"),
    case("generator missing tasks", GEN, "tasks = 20\n", "",
         "workload.generator.tasks", "expected an integer >= 1, found nothing"),
    case("fork_join missing stages", GEN, 'kind = "layered"', 'kind = "fork_join"',
         "workload.generator.stages", "found nothing", "kind = 'fork_join' needs it"),
    case("generator with neither duration nor flops", GEN, 'duration = "10 s"\n', "",
         "workload.generator", "exactly one of 'duration' or 'flops'", "found neither"),
    case("split_max without duration", GEN, 'duration = "10 s"',
         'flops = "1 GFLOP"\nsplit_max = "5 s"', "workload.generator.split_max",
         "'duration' alongside 'split_max'"),
    case("duplicate task name", TASKS, 'name = "fc"', 'name = "conv2"',
         "workload.tasks[2].name", "unique", "found 'conv2' again",
         "workload.tasks[1] already names it"),
    case("dependency on unknown task", TASKS, 'after = ["conv1"]', 'after = ["conv11"]',
         "workload.tasks[1].after[0]", "the name of a task", "found 'conv11'",
         "did you mean 'conv1'?"),
    case("input from unknown task", TASKS, 'from = "conv2"', 'from = "conv3"',
         "workload.tasks[2].inputs[0].from", "the name of a task", "did you mean 'conv1'?"),
    case("cycle", TASKS, 'after = ["conv1"]', 'after = ["conv1", "fc"]',
         "workload.tasks", "an acyclic task graph", "fc → conv2 → fc"),
    case("negative flops", TASKS, 'flops = "2 GFLOP"', 'flops = "-2 GFLOP"',
         "workload.tasks[0].flops", "a FLOP count >= 0", "found '-2 GFLOP'"),
    case("task with neither duration nor flops", TASKS, 'duration = "1 s"\nafter', "after",
         "workload.tasks[1]", "exactly one of 'duration' or 'flops'", "found neither"),
    case("task with both duration and flops", TASKS, 'duration = "1 s"\nafter',
         'duration = "1 s"\nflops = "1 GFLOP"\nafter', "workload.tasks[1]",
         "found both 'duration' and 'flops'"),
    case("pin to unknown unit", TASKS, 'unit = "gpu0"', 'unit = "gpu7"',
         "workload.tasks[0].unit", "the name of a compute unit", "found 'gpu7'"),
    case("pin to a switch", TASKS, 'unit = "gpu0"', 'unit = "sw0"',
         "workload.tasks[0].unit", "the name of a compute unit", "found 'sw0'"),
    case("static scheduler with unpinned tasks", TASKS, "",
         '\n[schedule]\nscheduler = "static"\n', "schedule.scheduler",
         "every task pinned", "task 'conv2' unpinned"),
    case("objective missing lambda", GEN, "",
         "\n[objective]\ntraining_error = 0.01\ninference_error = 0.02\n",
         "objective.lambda", "a number >= 0, found nothing"),
    # -- variants ------------------------------------------------------------------------
    case("variant overriding a nonexistent key", GEN, "",
         '\n[variants.chain]\n"workload.generater.kind" = "chain"\n',
         'variants.chain."workload.generater.kind"', "a key path of the scenario format",
         "did you mean 'workload.generator.kind'?"),
    case("variant indexing a missing unit", GEN, "",
         '\n[variants.big]\n"hardware.units[3].count" = 8\n',
         'variants.big."hardware.units[3].count"', "an existing entry", "found index 3"),
    case("variant with a bad value", GEN, "",
         '\n[variants.big]\n"hardware.units[0].efficiency" = 2\n',
         'variants.big."hardware.units[0].efficiency"', "in (0, 1]", "found 2"),
    case("variant breaking another key", GEN, "",
         '\n[variants.fj]\n"workload.generator.kind" = "fork_join"\n',
         "workload.generator.stages", "found nothing", "in variant 'fj'"),
    # -- TOML -------------------------------------------------------------------------------
    case("bad TOML syntax", GEN, 'name = "base"', "name = = base",
         "", "expected valid TOML", "line 2, column 8"),
]
