"""quality_scale.yaml tells the truth: every `done` rule is checked, here or by the test its comment names.

hassfest, Home Assistant's own checker, is not in the homeassistant wheel and skips quality_scale.yaml for
custom integrations. For the rules it has a check for, `HASSFEST_CHECKS` does what hassfest does: it reads
the package's source with `ast` (runtime-data, for one, looks for the `entry.runtime_data = ...`
assignment in `async_setup_entry` of __init__.py itself). `PROJECT_CHECKS` checks more rules the same way
(and the README, the brand images, CI's coverage gate). Every check is also run on a small package that
breaks its rule, and must fail there. The other `done` rules are behaviour: the rule's comment in
quality_scale.yaml names the test that exercises it, and `test_every_done_rule_is_checked` makes sure that
test exists. Two comments say what a real entry's entities are (entity-unique-id, entity-category):
`test_entity_registry_is_as_stated` reads them and checks them against the entity registry.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import packages_distributions, requires
import json
from pathlib import Path
import re
import sys
import tomllib

from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from packaging.requirements import Requirement
import pytest
import yaml

from custom_components.sound_sentry.const import DOMAIN
from tests.entries import rtsp_entry

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "custom_components" / DOMAIN
RULES: dict[str, str | dict[str, str]] = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text())["rules"]


def status(rule: str) -> str:
    value = RULES[rule]
    return value if isinstance(value, str) else value["status"]


def comment(rule: str) -> str:
    value = RULES[rule]
    return "" if isinstance(value, str) else value.get("comment", "")


DONE = {rule for rule in RULES if status(rule) == "done"}


@dataclass(frozen=True)
class Integration:
    """A custom integration's folder, as hassfest sees one."""

    path: Path

    @property
    def manifest(self) -> dict[str, object]:
        return json.loads((self.path / "manifest.json").read_text())

    @property
    def repo(self) -> Path:
        return self.path.parents[1]

    def comment(self, rule: str) -> str:
        """The comment of `rule` in the integration's quality_scale.yaml ("" if none)."""
        file = self.path / "quality_scale.yaml"
        rules = yaml.safe_load(file.read_text())["rules"] if file.is_file() else {}
        value = rules.get(rule, "")
        return value.get("comment", "") if isinstance(value, dict) else ""

    def module(self, name: str) -> ast.Module | None:
        """A module of the integration's own folder (not its subpackages), parsed; None if absent."""
        file = self.path / f"{name}.py"
        return ast.parse(file.read_text(), str(file)) if file.is_file() else None

    def modules(self) -> Iterator[tuple[str, ast.Module]]:
        for file in sorted(self.path.glob("*.py")):
            yield file.stem, ast.parse(file.read_text(), str(file))


type Check = Callable[[Integration], list[str]]


# -- what hassfest checks (script/hassfest/quality_scale_validation), for a package here ----------------


def _top_level_async_function(module: ast.Module | None, name: str) -> ast.AsyncFunctionDef | None:
    if module is None:
        return None
    return next((n for n in module.body if isinstance(n, ast.AsyncFunctionDef) and n.name == name), None)


def _defines_async_function(module: ast.Module | None, name: str) -> bool:
    """Anywhere in the module: a method of a class counts."""
    return module is not None and any(
        isinstance(n, ast.AsyncFunctionDef) and n.name == name for n in ast.walk(module)
    )


def _calls_method(module: ast.Module, name: str) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == name
        for n in ast.walk(module)
    )


def check_config_flow(integration: Integration) -> list[str]:
    if integration.manifest.get("config_flow") is not True:
        return ["manifest.json does not set config_flow"]
    if integration.module("config_flow") is None:
        return ["no config_flow.py"]
    return []


def check_config_entry_unloading(integration: Integration) -> list[str]:
    if _top_level_async_function(integration.module("__init__"), "async_unload_entry") is None:
        return ["__init__.py has no async_unload_entry"]
    return []


def check_diagnostics(integration: Integration) -> list[str]:
    diagnostics = integration.module("diagnostics")
    wanted = ("async_get_config_entry_diagnostics", "async_get_device_diagnostics")
    if not any(_defines_async_function(diagnostics, name) for name in wanted):
        return [f"diagnostics.py defines none of {wanted}"]
    return []


def _base_name(node: ast.expr) -> str:
    match node:
        case ast.Name(id=name) | ast.Attribute(attr=name):
            return name
        case ast.Subscript(value=value):  # a generic base: Entity[...]
            return _base_name(value)
    return ""


@dataclass
class _Class:
    bases: list[str]
    assigned: dict[str, ast.expr]


def _classes(integration: Integration) -> dict[str, _Class]:
    """The classes of the integration's own modules, by name: their bases and class-level assignments."""
    classes: dict[str, _Class] = {}
    for _name, module in integration.modules():
        for node in ast.walk(module):
            if not isinstance(node, ast.ClassDef):
                continue
            assigned: dict[str, ast.expr] = {}
            for statement in node.body:
                if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
                    assigned.update(
                        (target.id, statement.value)
                        for target in _targets(statement)
                        if isinstance(target, ast.Name)
                    )
            classes[node.name] = _Class([_base_name(base) for base in node.bases], assigned)
    return classes


def _ancestors(classes: dict[str, _Class], name: str) -> Iterator[str]:
    """The class and its bases, as far as they are the integration's own (then their names)."""
    yield name
    for base in classes[name].bases if name in classes else []:
        yield from _ancestors(classes, base)


def _entity_classes(classes: dict[str, _Class]) -> list[str]:
    """Classes that are entities: named ...Entity, or with an ...Entity among their ancestors."""
    return [name for name in classes if any(a.endswith("Entity") for a in _ancestors(classes, name))]


def check_has_entity_name(integration: Integration) -> list[str]:
    classes = _classes(integration)

    def has_entity_name(name: str) -> bool:
        value = classes[name].assigned.get("_attr_has_entity_name") if name in classes else None
        if isinstance(value, ast.Constant):
            return value.value is True
        return any(has_entity_name(base) for base in classes[name].bases) if name in classes else False

    return [
        f"{name} does not set _attr_has_entity_name = True"
        for name in _entity_classes(classes)
        if not has_entity_name(name)
    ]


def check_parallel_updates(integration: Integration) -> list[str]:
    errors = []
    for platform in Platform:
        module = integration.module(platform.value)
        if module is not None and not any(
            isinstance(n, ast.Assign | ast.AnnAssign)
            and any(isinstance(t, ast.Name) and t.id == "PARALLEL_UPDATES" for t in _targets(n))
            for n in module.body
        ):
            errors.append(f"{platform.value}.py does not set PARALLEL_UPDATES")
    return errors


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def check_reauthentication_flow(integration: Integration) -> list[str]:
    if not _defines_async_function(integration.module("config_flow"), "async_step_reauth"):
        return ["config_flow.py has no async_step_reauth"]
    return []


def check_reconfiguration_flow(integration: Integration) -> list[str]:
    if not _defines_async_function(integration.module("config_flow"), "async_step_reconfigure"):
        return ["config_flow.py has no async_step_reconfigure"]
    return []


TYPED_ENTRY = re.compile(r"[A-Za-z]+ConfigEntry")
"""How hassfest knows a typed config entry (`type XConfigEntry = ConfigEntry[XData]`) by its name."""


def _typed_entry_errors(integration: Integration) -> list[str]:
    """hassfest's extra runtime-data check once strict-typing is done: entries are typed everywhere."""
    entry_argument = {  # module -> function -> position of the config entry (1-based)
        "__init__": dict.fromkeys(
            (
                "async_migrate_entry",
                "async_remove_config_entry_device",
                "async_remove_entry",
                "async_setup_entry",
                "async_unload_entry",
            ),
            2,
        ),
        "diagnostics": dict.fromkeys(
            ("async_get_config_entry_diagnostics", "async_get_device_diagnostics"), 2
        ),
        **{platform.value: {"async_setup_entry": 2} for platform in Platform},
    }
    functions: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, int]] = []
    for module_name, wanted in entry_argument.items():
        module = integration.module(module_name)
        for name, position in wanted.items():
            if (function := _top_level_async_function(module, name)) is not None:
                functions.append((module_name, function, position))
    if (config_flow := integration.module("config_flow")) is not None:
        functions.extend(
            ("config_flow", node, 1)
            for cls in config_flow.body
            if isinstance(cls, ast.ClassDef)
            for node in cls.body
            if isinstance(node, ast.FunctionDef) and node.name == "async_get_options_flow"
        )
    errors = []
    for module_name, function, position in functions:
        arguments = function.args.args
        annotation = arguments[position - 1].annotation if len(arguments) >= position else None
        if not (isinstance(annotation, ast.Name) and TYPED_ENTRY.fullmatch(annotation.id)):
            errors.append(f"{module_name}.{function.name} does not take a typed config entry")
    return errors


def check_runtime_data(integration: Integration) -> list[str]:
    setup = _top_level_async_function(integration.module("__init__"), "async_setup_entry")
    if setup is None or len(setup.args.args) != 2:
        return ["__init__.py has no async_setup_entry(hass, entry)"]
    entry = setup.args.args[1].arg
    errors = []
    if not any(
        isinstance(n, ast.Attribute)
        and isinstance(n.ctx, ast.Store)
        and n.attr == "runtime_data"
        and isinstance(n.value, ast.Name)
        and n.value.id == entry
        for n in ast.walk(setup)
    ):
        errors.append(f"async_setup_entry in __init__.py does not assign {entry}.runtime_data")
    if "strict-typing" in DONE:
        errors.extend(_typed_entry_errors(integration))
    return errors


SETUP_EXCEPTIONS = {"ConfigEntryNotReady", "ConfigEntryAuthFailed", "ConfigEntryError"}


def _name_of(node: ast.expr | None) -> str:
    """The name a call, a raise or an except clause refers to: `f` of `x.f(...)`, `E` of `E(...)`."""
    match node:
        case ast.Call(func=func):
            return _name_of(func)
        case ast.Name(id=name) | ast.Attribute(attr=name):
            return name
    return ""


def check_test_before_setup(integration: Integration) -> list[str]:
    setup = _top_level_async_function(integration.module("__init__"), "async_setup_entry")
    if setup is not None and any(
        isinstance(n, ast.Call) and _name_of(n.func) == "async_config_entry_first_refresh"
        for n in ast.walk(setup)
    ):
        return []
    for file in integration.path.rglob("*.py"):
        module = ast.parse(file.read_text())
        if any(isinstance(n, ast.Raise) and _name_of(n.exc) in SETUP_EXCEPTIONS for n in ast.walk(module)):
            return []
    return [f"nothing raises one of {sorted(SETUP_EXCEPTIONS)}"]


def check_unique_config_entry(integration: Integration) -> list[str]:
    if integration.manifest.get("single_config_entry"):
        return []
    config_flow = integration.module("config_flow")
    if config_flow is not None and (
        _calls_method(config_flow, "_async_abort_entries_match")
        or (
            _calls_method(config_flow, "async_set_unique_id")
            and _calls_method(config_flow, "_abort_if_unique_id_configured")
        )
    ):
        return []
    return ["config_flow.py does not stop the same source from being set up twice"]


HASSFEST_CHECKS: dict[str, Check] = {
    "config-flow": check_config_flow,
    "config-entry-unloading": check_config_entry_unloading,
    "diagnostics": check_diagnostics,
    "has-entity-name": check_has_entity_name,
    "parallel-updates": check_parallel_updates,
    "reauthentication-flow": check_reauthentication_flow,
    "reconfiguration-flow": check_reconfiguration_flow,
    "runtime-data": check_runtime_data,
    "test-before-setup": check_test_before_setup,
    "unique-config-entry": check_unique_config_entry,
}


# -- more rules, checked the same way --------------------------------------------------------------------


def check_common_modules(integration: Integration) -> list[str]:
    """One base entity (entity.py) that every entity of the platforms derives from."""
    classes = _classes(integration)
    entity_module = integration.module("entity")
    bases = [n.name for n in entity_module.body if isinstance(n, ast.ClassDef)] if entity_module else []
    if len(bases) != 1:
        return [f"entity.py should hold the one base entity, holds {bases}"]
    platform_classes = {
        node.name
        for platform in Platform
        if (module := integration.module(platform.value)) is not None
        for node in module.body
        if isinstance(node, ast.ClassDef)
    }
    return [
        f"{name} does not derive from {bases[0]}"
        for name in _entity_classes(classes)
        if name in platform_classes and bases[0] not in _ancestors(classes, name)
    ]


SUBSCRIBE = re.compile(r"async_add(_\w+)?_listener|async_track_\w+|async_listen")


def check_entity_event_setup(integration: Integration) -> list[str]:
    """Entities subscribe in async_added_to_hass, through self.async_on_remove (so removal unsubscribes)."""
    classes = _classes(integration)
    entity_classes = set(_entity_classes(classes))
    errors = []
    for module_name, module in integration.modules():
        for cls in (n for n in ast.walk(module) if isinstance(n, ast.ClassDef) and n.name in entity_classes):
            for method in (n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
                removed = {
                    id(arg)
                    for call in ast.walk(method)
                    if isinstance(call, ast.Call) and _name_of(call.func) == "async_on_remove"
                    for arg in call.args
                }
                errors.extend(
                    f"{module_name}.{cls.name}.{method.name} subscribes outside async_added_to_hass "
                    "or without async_on_remove"
                    for call in ast.walk(method)
                    if isinstance(call, ast.Call)
                    and SUBSCRIBE.fullmatch(_name_of(call.func))
                    and (method.name != "async_added_to_hass" or id(call) not in removed)
                )
    return errors


def _strings(integration: Integration) -> dict[str, dict[str, object]]:
    return json.loads((integration.path / "strings.json").read_text())


def check_exception_translations(integration: Integration) -> list[str]:
    """Every Home Assistant exception the integration raises is translated (strings.json, exceptions)."""
    translated = _strings(integration).get("exceptions", {})
    errors, raised = [], 0
    for module_name, module in integration.modules():
        from_home_assistant = {
            alias.asname or alias.name
            for node in module.body
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("homeassistant")
            for alias in node.names
        }
        for node in ast.walk(module):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            if (name := _name_of(node.exc)) not in from_home_assistant:
                continue
            raised += 1
            keywords = {k.arg: k.value for k in node.exc.keywords}
            key = keywords.get("translation_key")
            if "translation_domain" not in keywords or not (
                isinstance(key, ast.Constant) and key.value in translated
            ):
                errors.append(
                    f"{module_name}: {name} (line {node.lineno}) has no translation in strings.json"
                )
    return errors if raised else ["raises no Home Assistant exception: nothing to check"]


def check_icon_translations(integration: Integration) -> list[str]:
    """Every translated entity has an icon, with a default (icons.json) and no icon is for nothing."""
    icons = json.loads((integration.path / "icons.json").read_text())["entity"]
    names = _strings(integration)["entity"]
    errors = [
        f"icons.json and strings.json name other {platform} entities"
        for platform in set(icons) | set(names)
        if set(icons.get(platform, {})) != set(names.get(platform, {}))
    ]
    errors += [
        f"{platform}.{key} has no default icon"
        for platform, keys in icons.items()
        for key, icon in keys.items()
        if "default" not in icon
    ]
    return errors


def check_integration_owner(integration: Integration) -> list[str]:
    owners = integration.manifest.get("codeowners")
    if not (
        isinstance(owners, list) and owners and all(re.fullmatch(r"@[\w-]+(/[\w-]+)?", o) for o in owners)
    ):
        return [f"manifest.json codeowners {owners!r} names no GitHub owner"]
    return []


def _imports(module: ast.Module) -> Iterator[tuple[str, bool]]:
    """(top-level package, optional) for each absolute import; optional = inside try ... except ImportError."""
    optional: set[int] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Try) and any(
            _name_of(h.type) in {"ImportError", "ModuleNotFoundError"} for h in node.handlers
        ):
            optional.update(id(n) for n in ast.walk(node))  # the import tried and its fallback
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            yield from ((alias.name.partition(".")[0], id(node) in optional) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], id(node) in optional


def check_dependency_transparency(integration: Integration) -> list[str]:
    """What the integration imports that neither Python nor Home Assistant brings is a manifest requirement
    (with a version); a requirement is imported; what may be missing (onnxruntime) is optional."""
    requirements = {Requirement(r).name.lower(): Requirement(r) for r in integration.manifest["requirements"]}
    home_assistant = {Requirement(r).name.lower() for r in requires("homeassistant") or []}
    distributions = packages_distributions()
    needed: set[str] = set()
    errors = []
    # The MQTT service (engine/service), which Home Assistant never imports, has pyproject's `service` extra.
    pyproject = integration.repo / "pyproject.toml"
    extras = (
        tomllib.loads(pyproject.read_text())["project"].get("optional-dependencies", {})
        if pyproject.is_file()
        else {}
    )
    service = {Requirement(r).name.lower() for r in extras.get("service", [])}
    for file in integration.path.rglob("*.py"):
        in_service = (integration.path / "engine" / "service") in file.parents
        for package, optional in _imports(ast.parse(file.read_text())):
            if package in sys.stdlib_module_names or package in {
                "homeassistant",
                "custom_components",
                "__future__",
            }:
                continue
            names = {d.lower() for d in distributions.get(package, [package])}
            if optional:
                if names & set(requirements):
                    errors.append(f"{package} is imported as optional but is a requirement")
                continue
            if not names & (set(requirements) | home_assistant | (service if in_service else set())):
                errors.append(f"{file.name} imports {package}, which no requirement installs")
            if not in_service:
                needed |= names
    errors += [f"requirement {name} is never imported" for name in set(requirements) - needed]
    errors += [f"requirement {r} has no version" for r in requirements.values() if not r.specifier]
    return errors


def check_strict_typing(integration: Integration) -> list[str]:
    """mypy runs strict on the package in CI (scripts/test); entries are typed (hassfest's check)."""
    mypy = tomllib.loads((integration.repo / "pyproject.toml").read_text())["tool"]["mypy"]
    errors = [] if mypy.get("strict") is True else ["mypy is not strict"]
    if f"custom_components.{integration.path.name}" not in mypy.get("packages", []):
        errors.append("mypy does not check the package")
    if "run_latest mypy" not in (integration.repo / "scripts" / "test").read_text():
        errors.append("scripts/test does not run mypy")
    return errors + _typed_entry_errors(integration)


def check_brands(integration: Integration) -> list[str]:
    """The brand images Home Assistant (2026.3+) and HACS take from a custom integration's brand/ folder."""
    errors = []
    for name, size in (("icon.png", 256), ("icon@2x.png", 512), ("logo.png", None)):
        file = integration.path / "brand" / name
        data = file.read_bytes() if file.is_file() else b""
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            errors.append(f"brand/{name} is not a PNG")
        elif size and (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) != (size, size):
            errors.append(f"brand/{name} is not {size}x{size}")
    return errors


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def _coverage_claims_hold(integration: Integration, rule: str, include: str | None) -> list[str]:
    """What the rule's comment says CI measures of `include` (None: the whole package) is what scripts/test
    does: it fails below the comment's "fails below N%", measures on the latest Home Assistant, and
    counts lines only (no branches, which the comments do not claim)."""
    script = _read(integration.repo / "scripts" / "test").replace("\\\n", " ")  # one command a line
    gate_line = next(
        (
            line
            for line in script.splitlines()
            if "--fail-under=" in line and (include in line if include else "--include" not in line)
        ),
        "",
    )
    if not gate_line:
        return [f"scripts/test has no coverage gate for {include or 'the package'}"]
    gate = float(gate_line.split("--fail-under=")[1].split()[0])
    claimed = re.search(r"fails below (\d+(?:\.\d+)?)%", integration.comment(rule))
    errors = []
    if claimed is None or float(claimed[1]) != gate:
        errors.append(f"{rule} does not say that CI fails below {gate:g}% (scripts/test's gate)")
    # The report reads what the latest environment's pytest run measured (its --cov).
    if "run_latest" not in gate_line or f"--cov=custom_components.{integration.path.name}" not in script:
        errors.append("scripts/test does not measure the package's coverage on the latest Home Assistant")
    tool = tomllib.loads(_read(integration.repo / "pyproject.toml")).get("tool", {})
    if "--cov-branch" in script or tool.get("coverage", {}).get("run", {}).get("branch"):
        errors.append("CI measures branches too: say so")
    return errors


def check_config_flow_test_coverage(integration: Integration) -> list[str]:
    """CI fails when the suite on the latest Home Assistant covers less than 100% of config_flow.py's
    lines, as the rule's comment says."""
    errors = _coverage_claims_hold(integration, "config-flow-test-coverage", "config_flow.py")
    if "fails below 100%" not in integration.comment("config-flow-test-coverage"):
        errors.append("CI does not ask for all of config_flow.py")
    return errors


def check_test_coverage(integration: Integration) -> list[str]:
    """CI prints the package's line coverage on the latest Home Assistant and fails below the gate the
    rule's comment names."""
    return _coverage_claims_hold(integration, "test-coverage", None)


def _readme(integration: Integration) -> str:
    return (integration.repo / "README.md").read_text()


def _readme_has(*sections: str) -> Check:
    def check(integration: Integration) -> list[str]:
        headings = {
            line.lstrip("#").strip() for line in _readme(integration).splitlines() if line.startswith("#")
        }
        return [f"README has no section {s!r}" for s in sections if s not in headings]

    return check


def _readme_says(*texts: str) -> Check:
    def check(integration: Integration) -> list[str]:
        return [f"README does not say {t!r}" for t in texts if t not in _readme(integration)]

    return check


PROJECT_CHECKS: dict[str, Check] = {
    "brands": check_brands,
    "common-modules": check_common_modules,
    "config-flow-test-coverage": check_config_flow_test_coverage,
    "dependency-transparency": check_dependency_transparency,
    "entity-event-setup": check_entity_event_setup,
    "exception-translations": check_exception_translations,
    "icon-translations": check_icon_translations,
    "integration-owner": check_integration_owner,
    "strict-typing": check_strict_typing,
    "test-coverage": check_test_coverage,
    "docs-high-level-description": _readme_has("What it detects, and how well"),
    "docs-installation-instructions": _readme_has("Install"),
    "docs-removal-instructions": _readme_says("To remove it"),
    "docs-installation-parameters": _readme_has("Sources"),
    "docs-configuration-parameters": _readme_has("Tuning"),
    "docs-data-update": _readme_has("How often the entities update"),
    "docs-examples": _readme_has("Automations"),
    "docs-known-limitations": _readme_says("<!-- model-metrics -->", "Do not work"),
    "docs-supported-devices": _readme_has("Supported cameras and devices"),
    "docs-supported-functions": _readme_has("Entities"),
    "docs-troubleshooting": _readme_has("Troubleshooting", "FAQ"),
    "docs-use-cases": _readme_has("Automations", "Smoke and CO alarms"),
}

CHECKS = HASSFEST_CHECKS | PROJECT_CHECKS
assert not set(HASSFEST_CHECKS) & set(PROJECT_CHECKS)


# -- the tests --------------------------------------------------------------------------------------------


def test_every_rule_has_a_status_and_every_exemption_a_reason() -> None:
    assert len(RULES) >= 50
    for rule in RULES:
        assert status(rule) in {"done", "exempt", "todo"}, rule
        if status(rule) != "done":
            assert len(comment(rule)) > 20, f"{rule}: say why"


@pytest.mark.parametrize("rule", sorted(DONE & set(CHECKS)))
def test_done_rule_holds(rule: str) -> None:
    assert CHECKS[rule](Integration(PACKAGE)) == []


TEST_REFERENCE = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")


def test_every_done_rule_is_checked() -> None:
    """Each `done` rule's comment names what checks it: this file (then a check above exists) or a test
    (then that test exists); and every test a comment names exists."""
    unchecked = []
    for rule in sorted(RULES):
        references = TEST_REFERENCE.findall(comment(rule))
        for path, test in references:
            file = REPO / path
            assert file.is_file(), f"{rule}: {path} does not exist"
            if not test:
                assert path == "tests/test_quality_scale.py", (
                    f"{rule}: name the test in {path} (path::test_name)"
                )
                assert rule in CHECKS, f"{rule}: names {path}, which has no check for it"
                continue
            tree = ast.parse(file.read_text())
            names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            assert test in names, f"{rule}: {path} has no {test}"
        if rule in DONE and not references:
            unchecked.append(rule)
    assert not unchecked, f"done, but no comment names the test that checks them: {unchecked}"


def test_no_triggers_or_conditions_of_its_own() -> None:
    """docs-triggers / docs-conditions are exempt because the integration registers none."""
    names = {path.name for path in PACKAGE.glob("*.py")}
    assert not names & {"trigger.py", "condition.py", "device_trigger.py", "device_condition.py"}


def _backquoted(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


async def test_entity_registry_is_as_stated(hass: HomeAssistant, entity_registry: er.EntityRegistry) -> None:
    """entity-unique-id and entity-category, read from their comments, against the registry entries of
    a real source (its camera unreachable: the entities exist all the same).

    entity-unique-id names the unique id's form in backquotes (`<config entry id>_<key>`). entity-category
    lists keys in backquotes after "Diagnostic:" and after "No category:" (`<sound>` stands for any sound
    or alarm of the source: what its event entity fires); every entity is named once, each name is one.
    """
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    [event] = [e for e in entities if e.domain == Platform.EVENT]
    sounds = "|".join(map(re.escape, (event.capabilities or {})["event_types"]))

    [form] = [name for name in _backquoted(comment("entity-unique-id")) if "<key>" in name]
    unique_id = re.escape(form).replace(re.escape("<config entry id>"), re.escape(entry.entry_id))
    unique_id = unique_id.replace(re.escape("<key>"), "(?P<key>.+)")
    keys = {}
    for entity in entities:
        match = re.fullmatch(unique_id, entity.unique_id)
        assert match, f"{entity.entity_id}: unique id {entity.unique_id!r} is not {form}"
        keys[match["key"]] = entity.entity_category

    diagnostic, _, no_category = comment("entity-category").partition("No category:")
    claims = {
        name: category
        for text, category in (
            (diagnostic.partition("Diagnostic:")[2], EntityCategory.DIAGNOSTIC),
            (no_category.partition("Checked by")[0], None),
        )
        for name in _backquoted(text)
    }
    assert set(claims.values()) == {None, EntityCategory.DIAGNOSTIC}, claims
    named: dict[str, list[str]] = {name: [] for name in claims}
    for key, category in keys.items():
        [name] = [n for n in claims if re.fullmatch(re.escape(n).replace("<sound>", f"({sounds})"), key)]
        named[name].append(key)
        assert category == claims[name], f"{key} is {category}, but entity-category says {claims[name]}"
    assert all(named.values()), f"entity-category names entities the source lacks: {named}"
    assert await hass.config_entries.async_unload(entry.entry_id)


# -- each check fails on a package that breaks its rule -------------------------------------------------

GOOD_MANIFEST = {
    "domain": "demo",
    "name": "Demo",
    "config_flow": True,
    "codeowners": ["@me"],
    "requirements": [],
}

BROKEN: dict[str, dict[str, str]] = {
    "config-flow": {"manifest.json": json.dumps({**GOOD_MANIFEST, "config_flow": False})},
    "config-entry-unloading": {"__init__.py": "async def async_setup_entry(hass, entry): ...\n"},
    "diagnostics": {"diagnostics.py": "def async_get_config_entry_diagnostics(hass, entry): ...\n"},
    "has-entity-name": {
        "entity.py": "class DemoEntity(Entity):\n    _attr_has_entity_name = True\n",
        "sensor.py": "class Level(SensorEntity):\n    _attr_has_entity_name = False\n",
    },
    "parallel-updates": {"sensor.py": "class Level(DemoEntity, SensorEntity): ...\n"},
    "reauthentication-flow": {"config_flow.py": "class Flow:\n    async def async_step_user(self): ...\n"},
    "reconfiguration-flow": {"config_flow.py": "class Flow:\n    async def async_step_reauth(self): ...\n"},
    # How __init__.py handed setting up over to entry.py before: hassfest cannot see the assignment there.
    "runtime-data": {
        "__init__.py": (
            "async def async_setup_entry(hass: HomeAssistant, entry: DemoConfigEntry) -> bool:\n"
            "    from .entry import async_setup_entry as setup_entry\n"
            "    return await setup_entry(hass, entry)\n"
        ),
    },
    "test-before-setup": {
        "__init__.py": "async def async_setup_entry(hass, entry):\n    entry.runtime_data = 1\n    return True\n"
    },
    "unique-config-entry": {
        "config_flow.py": "class Flow:\n    async def async_step_user(self):\n"
        "        await self.async_set_unique_id('x')\n"
    },
    "brands": {"brand/icon.png": "not a png"},
    "common-modules": {
        "entity.py": "class DemoEntity(Entity):\n    _attr_has_entity_name = True\n",
        "sensor.py": "class Level(SensorEntity):\n    _attr_has_entity_name = True\n",
    },
    "config-flow-test-coverage": {
        "quality_scale.yaml": "rules:\n  config-flow-test-coverage:\n    comment: CI fails below 100%.\n",
        "../../scripts/test": (
            "run_latest python -m pytest --cov=custom_components.demo\n"
            "run_latest python -m coverage report --include=*/config_flow.py --fail-under=90\n"
        ),
    },
    # Says what CI measures, but CI measures branches too.
    "test-coverage": {
        "quality_scale.yaml": "rules:\n  test-coverage:\n    comment: CI fails below 94% of the lines.\n",
        "../../scripts/test": (
            "run_latest python -m pytest --cov=custom_components.demo --cov-branch\n"
            "run_latest python -m coverage report --fail-under=94\n"
        ),
    },
    "dependency-transparency": {
        "__init__.py": "import requests_oauthlib\n",
        "manifest.json": json.dumps({**GOOD_MANIFEST, "requirements": ["numpy"]}),
    },
    "entity-event-setup": {
        "entity.py": (
            "class DemoEntity(Entity):\n"
            "    def __init__(self, runtime):\n"
            "        runtime.async_add_listener(self.async_write_ha_state)\n"
        ),
    },
    "exception-translations": {
        "__init__.py": (
            "from homeassistant.exceptions import ConfigEntryError\n"
            "def fail():\n    raise ConfigEntryError('the model is gone')\n"
        ),
        "strings.json": json.dumps({"exceptions": {}}),
    },
    "icon-translations": {
        "icons.json": json.dumps({"entity": {"sensor": {"level": {"state": {}}}}}),
        "strings.json": json.dumps(
            {"entity": {"sensor": {"level": {"name": "Level"}, "peak": {"name": "Peak"}}}}
        ),
    },
    "integration-owner": {"manifest.json": json.dumps({**GOOD_MANIFEST, "codeowners": []})},
    "strict-typing": {
        "__init__.py": "async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None: ...\n",
        "../../pyproject.toml": "[tool.mypy]\nstrict = true\npackages = ['custom_components.demo']\n",
        "../../scripts/test": "run_latest mypy\n",
    },
    "docs-examples": {"../../README.md": "# Demo\n## Install\n"},
}


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_each_check_fails_on_a_package_that_breaks_its_rule(rule: str, tmp_path: Path) -> None:
    package = tmp_path / "custom_components" / "demo"
    files = {"manifest.json": json.dumps(GOOD_MANIFEST), **BROKEN[rule]}
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    assert CHECKS[rule](Integration(package)) != []


def test_every_check_is_shown_to_fail() -> None:
    assert set(CHECKS) - set(BROKEN) <= {name for name in PROJECT_CHECKS if name.startswith("docs-")}
