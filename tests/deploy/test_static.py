"""The deployment files without deploying: ansible-lint (production profile), syntax check
and yamllint clean; the TOSCA template valid for tosca-parser, bad templates refused; and
no drift between the TOSCA inputs, the role's variables and the hub's config schema."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from toscaparser.common.exception import ValidationError
from toscaparser.tosca_template import ToscaTemplate

from mlaas4hep_hub.config import SCHEMA

from .playbook import ANSIBLE, BIN, ROOT

TOSCA = ROOT / "tosca"
TEMPLATE = TOSCA / "mlaas4hep_hub.yaml"
ROLE = ANSIBLE / "roles" / "mlaas4hep_hub"
HUB_NODE = "mlaas4hep_hub"
#: TOSCA property type -> argument_specs type
TYPES = {"string": "str", "integer": "int", "boolean": "bool", "list": "list", "map": "dict",
         "float": "float"}


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)


def role_options() -> dict[str, dict[str, Any]]:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


def hub_node_inputs(template: ToscaTemplate) -> dict[str, Any]:
    """The configure inputs of the hub node: its type's, updated by the template's."""
    node = next(n for n in template.nodetemplates if n.name == HUB_NODE)
    inputs = dict(node.type_definition.interfaces["Standard"]["configure"]["inputs"])
    for interface in node.interfaces:
        inputs.update(interface.inputs or {})
    return inputs


def get_inputs(value: Any) -> set[str]:
    """Names of the topology inputs that ``value`` (a raw YAML value) reads."""
    if isinstance(value, dict):
        found = {value["get_input"]} if "get_input" in value else set()
        return found.union(*(get_inputs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(get_inputs(v) for v in value))
    return set()


def test_ansible_lint_production_profile() -> None:
    result = run(str(BIN / "ansible-lint"), "--profile", "production", cwd=ANSIBLE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


@pytest.mark.parametrize("playbook", ["site.yml", "tosca_configure.yml"])
def test_syntax_check(playbook: str) -> None:
    result = run(str(BIN / "ansible-playbook"), "-i", "inventories/localhost.yml",
                 "--syntax-check", playbook, cwd=ANSIBLE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_clean() -> None:
    result = run(str(BIN / "yamllint"), "--strict", "-c", str(ANSIBLE / ".yamllint"),
                 "ansible", "tosca")
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_validates() -> None:
    template = ToscaTemplate(str(TEMPLATE))
    nodes = {n.name: n for n in template.nodetemplates}
    host = nodes["hub_server"].get_capability("host").get_properties()
    assert {"num_cpus", "mem_size", "num_gpus"} <= set(host)
    assert template.inputs and {i.name: i.type for i in template.inputs}["mem_size"] == \
        "scalar-unit.size"
    artifact = nodes[HUB_NODE].type_definition.get_value("artifacts")["mlaas4hep_hub_role"]
    assert artifact["type"] == "tosca.artifacts.AnsibleGalaxy.role"
    assert nodes["iam_client"].type == "tosca.nodes.indigo.iam.client"
    assert "hub_url" in {o.name for o in template.outputs}
    assert all(i.description for i in template.inputs)


def test_tosca_inputs_and_role_variables_agree() -> None:
    template = ToscaTemplate(str(TEMPLATE))
    options = role_options()
    inputs = hub_node_inputs(template)
    undeclared = set(inputs) - set(options)
    assert not undeclared, f"configure inputs that are no role variable: {sorted(undeclared)}"
    required = {name for name, spec in options.items() if spec.get("required")}
    assert required <= set(inputs), f"required role variables not fed: {required - set(inputs)}"

    node = next(n for n in template.nodetemplates if n.name == HUB_NODE)
    properties = node.type_definition.get_properties_def()
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    consumed = set()
    for variable, value in inputs.items():
        if isinstance(value, dict) and value.get("get_property", [None])[0] == "SELF":
            prop = properties[value["get_property"][1]]
            consumed.add(prop.name)
            assert TYPES[prop.schema["type"]] == options[variable]["type"], variable
            if "default" in prop.schema and variable in defaults:
                assert prop.schema["default"] == defaults[variable], variable
    assert consumed == set(properties) - {"component_version", "admin_credential"}, \
        "a property of the hub node reaches no role variable"

    raw = yaml.safe_load(TEMPLATE.read_text())["topology_template"]
    used = get_inputs(raw["node_templates"]) | get_inputs(raw["outputs"])
    assert used == set(raw["inputs"]), f"inputs used nowhere: {set(raw['inputs']) - used}"
    hub_properties = raw["node_templates"][HUB_NODE]["properties"]
    assert set(hub_properties) <= consumed


def test_role_variables_are_documented() -> None:
    options = role_options()
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert set(defaults) <= set(options), set(defaults) - set(options)
    for name, spec in options.items():
        assert spec.get("description") and spec.get("type"), name
        assert spec.get("required") or name in defaults, f"{name}: no default"
        assert not (spec.get("required") and name in defaults), f"{name}: required with default"


def schema_paths(schema: dict[str, Any], value: Any, where: str = "") -> list[str]:
    """Keys of ``value`` that the hub config schema does not know."""
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    wrong = []
    for key, sub in value.items():
        if key not in schema["properties"]:
            wrong.append(f"{where}{key}")
        else:
            wrong += schema_paths(schema["properties"][key], sub, f"{where}{key}.")
    return wrong


def test_role_writes_hub_config_keys_of_the_schema() -> None:
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    config = role_vars["mlaas4hep_hub_config"]
    assert schema_paths(SCHEMA, config) == []
    known = set(role_options()) | set(role_vars)
    text = (ROLE / "vars" / "main.yml").read_text()
    referenced = set(re.findall(r"\bmlaas4hep_hub_\w+", text))
    assert referenced <= known, referenced - known


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t["topology_template"]["node_templates"][HUB_NODE]["properties"]
     .update(colour="blue"), "colour"),
    (lambda t: t["topology_template"]["inputs"]["num_cpus"].update(default="four"), "four"),
])
def test_bad_template_rejected(tmp_path: Path, change: Any, message: str) -> None:
    shutil.copytree(TOSCA / "types", tmp_path / "types")
    template = yaml.safe_load(TEMPLATE.read_text())
    change(template)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(template))
    with pytest.raises(ValidationError, match=message):
        ToscaTemplate(str(bad))
