"""Images pinned by digest (`image-digests`): every image of a listed repository, in any Kubernetes object the stack
registers (containers, init containers, a Prometheus resource and its Thanos sidecar), runs `<repository>:<tag>@<digest>`."""

from typing import Any

import pulumi

from components.platform.common import split_image
from config.stack import StackConfig


def pinned(image: str, digests: dict[str, str]) -> str:
    """The image with its repository's digest (the tag kept, so labels and version checks still read it)."""
    repository, tag, _ = split_image(image)
    if repository not in digests:
        return image
    return f"{repository}{':' + tag if tag else ''}@{digests[repository]}"


def pin_images(value: Any, digests: dict[str, str]) -> Any:
    """`value` with every `image` string field, at any depth, pinned."""
    if isinstance(value, dict):
        return {k: pinned(v, digests) if k == "image" and isinstance(v, str) else pin_images(v, digests)
                for k, v in value.items()}
    if isinstance(value, list):
        return [pin_images(v, digests) for v in value]
    return value


def pin_image_digests(stack: StackConfig) -> None:
    """Pin the images of every Kubernetes resource registered from now on (nothing to do without image-digests)."""
    digests = stack.image_digests
    if not digests:
        return

    def pin(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not args.type_.startswith("kubernetes:"):
            return None
        return pulumi.ResourceTransformationResult(pin_images(args.props, digests), args.opts)

    # SDK-side, as the renames: preflight's mock monitor sees the same pinned images that `pulumi up` sends.
    pulumi.runtime.register_stack_transformation(pin)
