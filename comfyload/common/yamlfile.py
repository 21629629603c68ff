"""Reading the suite's YAML files (scenarios, workflow specs, book profiles, SLA): one clear
error line for a missing file, bad YAML or a file that is not a mapping."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from comfyload.common.errors import UserError


def read_mapping(path, what: str = "file", missing_ok: bool = False, empty_ok: bool = True) -> dict:
    """The file as a dict. `empty_ok=False`: an empty file is an error (an SLA file that says
    nothing must not silently mean the defaults)."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=KeyLineLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise UserError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a UTF-8 text file (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    except DuplicateKey as exc:
        raise UserError(f"{path} line {exc.line}: key {exc.key!r} is given twice (line {exc.first} too)") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML{yaml_position(exc)}: {yaml_problem(exc)}") from None
    except RecursionError:
        raise UserError(f"{path}: invalid YAML: nested too deeply") from None
    if data is None:
        if empty_ok:
            return {}
        raise UserError(f"{path}: the {what} is empty")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys, not {type(data).__name__}")
    return data


class KeyedMapping(dict):
    """A YAML mapping that remembers the (1-based) line of each of its keys, for error lines."""

    lines: dict

    def line_of(self, key) -> int | None:
        return getattr(self, "lines", {}).get(key)


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key, line: int, first: int):
        super().__init__(f"duplicate key {key!r}")
        self.key, self.line, self.first = key, line, first


class KeyLineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings are KeyedMappings, refusing a key given twice (PyYAML keeps the
    last silently, so `users: 2` then `users: 20` would quietly mean 20)."""

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        explicit = sum(k.tag != "tag:yaml.org,2002:merge" for k, _ in node.value)
        self.flatten_mapping(node)
        merged = len(node.value) - explicit  # `<<:` entries come first; a key of its own may override them
        mapping, lines, from_merge = KeyedMapping(), {}, set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
                ) from None
            line = key_node.start_mark.line + 1
            if key in lines and index >= merged and lines[key] not in from_merge:
                raise DuplicateKey(key, line, lines[key])
            if index < merged:
                from_merge.add(line)
            lines[key] = line
            mapping[key] = self.construct_object(value_node, deep=deep)
        mapping.lines = lines
        return mapping

    def construct_keyed_map(self, node):
        data = KeyedMapping()
        yield data
        value = self.construct_mapping(node)
        data.update(value)
        data.lines = value.lines


KeyLineLoader.add_constructor("tag:yaml.org,2002:map", KeyLineLoader.construct_keyed_map)


def refuse_unknown_keys(mapping, known, where, what: str = "key") -> None:
    """UserError naming every key of `mapping` not in `known`: where (file, and line when the YAML
    loader kept it), and the nearest known key (`varyings` -> did you mean `varying`?)."""
    unknown = [k for k in mapping if k not in known]
    if not unknown:
        return
    said = []
    for key in unknown:
        line = mapping.line_of(key) if isinstance(mapping, KeyedMapping) else None
        near = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(sorted(map(str, known)))})"
        said.append(f"{'line ' + str(line) + ': ' if line else ''}unknown {what} {key!r}{hint}")
    raise UserError(f"{where}: " + "; ".join(said))


def yaml_position(exc) -> str:
    """ " at line L column C" (1-based) where PyYAML knows where the problem is."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return "" if mark is None else f" at line {mark.line + 1} column {mark.column + 1}"


def yaml_problem(exc) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = " ".join(p for p in (context, problem) if p) or str(exc)
    return " ".join(text.split())
