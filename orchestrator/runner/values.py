"""Values between nodes: cache keys, and large outputs moved into artifacts.

An output over the threshold travels as ``{"$artifact": {uri, mime_type,
size, sha256}}`` - the JSON bytes kept in the artifact store - and is turned
back into its value before the consuming node sees it. Ports typed
:class:`~nodes.Artifact` carry artifact references as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from nodes.artifacts import Artifact, ArtifactStore

ARTIFACT_KEY = "$artifact"
DEFAULT_THRESHOLD = 256 * 1024
_SCALARS = (int, float, bool, type(None))


def canonical(value: Any) -> str:
    """Stable JSON of ``value`` (sorted keys, no spaces) for digests."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(
    type_name: str, version: int, config: Mapping[str, Any], inputs: Mapping[str, Any]
) -> str:
    """The cache key of a node run: type, type version, config and input digests."""
    text = canonical([type_name, version, dict(config), dict(inputs)])
    return hashlib.sha256(text.encode()).hexdigest()


def offload(outputs: dict[str, Any], store: ArtifactStore, threshold: int) -> dict[str, Any]:
    """Replace each output whose JSON is over ``threshold`` bytes by an artifact marker."""
    result = outputs
    for port, value in outputs.items():
        if isinstance(value, _SCALARS):
            continue
        if isinstance(value, str):
            if len(value) * 4 < threshold and len(value) < threshold:
                continue
            data = json.dumps(value).encode()
        elif isinstance(value, dict) and ARTIFACT_KEY in value:
            continue
        else:
            data = json.dumps(value).encode()
        if len(data) <= threshold:
            continue
        if result is outputs:
            result = dict(outputs)
        artifact = store.put(data, "application/json")
        result[port] = {ARTIFACT_KEY: artifact.model_dump()}
    return result


def restore_value(value: Any, store: ArtifactStore) -> Any:
    """``value`` with artifact markers turned back into what they hold.

    A marker may be the value itself or an item of a list (a loop's ``Output``
    collects one value per iteration).
    """
    if isinstance(value, dict) and ARTIFACT_KEY in value and len(value) == 1:
        artifact = Artifact.model_validate(value[ARTIFACT_KEY])
        return json.loads(store.get(artifact))
    if isinstance(value, list) and any(isinstance(v, dict) and ARTIFACT_KEY in v for v in value):
        return [restore_value(v, store) for v in value]
    return value


def restore(inputs: dict[str, Any], store: ArtifactStore) -> dict[str, Any]:
    """Turn artifact markers back into the values they hold."""
    result = inputs
    for port, value in inputs.items():
        if isinstance(value, dict) and ARTIFACT_KEY in value and len(value) == 1:
            if result is inputs:
                result = dict(inputs)
            artifact = Artifact.model_validate(value[ARTIFACT_KEY])
            result[port] = json.loads(store.get(artifact))
    return result
