"""Helpers for image modules: ``ImageModuleInfo`` and the expected input image size.

``ImageModuleInfo`` is the protobuf message tensorflow_hub attaches under the key
``image_module_info`` (package ``tensorflow_hub``). The class is built at runtime from its
descriptor, in a private descriptor pool so it never clashes with tensorflow_hub's own copy.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = [
    "ImageModuleInfo",
    "attach_image_module_info",
    "get_expected_image_size",
    "get_image_module_info",
    "get_num_image_channels",
]

IMAGE_MODULE_INFO_KEY = "image_module_info"


def _build_image_module_info() -> type:
    f = descriptor_pb2.FieldDescriptorProto
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_hub/image_module_info.proto", package="tensorflow_hub", syntax="proto3"
    )
    info = file_proto.message_type.add(name="ImageModuleInfo")
    size = info.nested_type.add(name="InputSize")
    size.field.add(name="height", number=1, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    size.field.add(name="width", number=2, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    size.reserved_range.add(start=3, end=4)
    info.field.add(
        name="default_image_size",
        number=1,
        type=f.TYPE_MESSAGE,
        label=f.LABEL_OPTIONAL,
        type_name=".tensorflow_hub.ImageModuleInfo.InputSize",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow_hub.ImageModuleInfo")
    )


ImageModuleInfo = _build_image_module_info()
ImageModuleInfo.__doc__ = (
    "tensorflow_hub.ImageModuleInfo: `default_image_size` (InputSize: height, width) of an "
    "image module."
)


def attach_image_module_info(image_module_info: Any) -> None:
    """Attaches ``image_module_info`` to the module being defined (call inside ``module_fn``)."""
    from hubcore.creation import attach_message

    attach_message(IMAGE_MODULE_INFO_KEY, image_module_info)


def get_image_module_info(module_or_spec: Any, required: bool = False) -> Any:
    """Returns the attached ImageModuleInfo, or None (KeyError if ``required``)."""
    return module_or_spec.get_attached_message(
        IMAGE_MODULE_INFO_KEY, ImageModuleInfo, required=required
    )


def _input_shape(module_or_spec: Any, signature: str | None, input_name: str | None) -> Any:
    input_name = input_name or "images"
    infos = module_or_spec.get_input_info_dict(signature)
    try:
        return infos[input_name].get_shape()
    except KeyError:
        raise ValueError(
            f"Module is missing input '{input_name}' in signature '{signature or 'default'}'."
        ) from None


def get_expected_image_size(
    module_or_spec: Any, signature: str | None = None, input_name: str | None = None
) -> list[int]:
    """Returns ``[height, width]`` of the images the module expects.

    An attached ImageModuleInfo with non-zero height and width wins; otherwise the input
    ``input_name`` (default ``images``) must have shape ``[batch, height, width, channels]``
    with known height and width (else ValueError).
    """
    info = get_image_module_info(module_or_spec)
    if info is not None:
        size = info.default_image_size
        if size.height and size.width:
            return [size.height, size.width]
    shape = _input_shape(module_or_spec, signature, input_name)
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None or len(dims) != 4 or not dims[1] or not dims[2]:
        raise ValueError(
            f"Shape of module input is {shape}, expected [batch_size, height, width, "
            "num_channels] with known height and width."
        )
    return [dims[1], dims[2]]


def get_num_image_channels(
    module_or_spec: Any, signature: str | None = None, input_name: str | None = None
) -> int:
    """Returns the number of color channels the module expects (the input's last dim)."""
    shape = _input_shape(module_or_spec, signature, input_name)
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None or len(dims) != 4 or dims[3] is None:
        raise ValueError(
            f"Shape of module input is {shape}, expected [batch_size, height, width, "
            "num_channels] with known num_channels."
        )
    return dims[3]
