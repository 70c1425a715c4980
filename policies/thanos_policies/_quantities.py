"""Sizes as Kubernetes and Thanos write them."""


_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3,
          "Ti": 1024**4}


def _bytes(quantity: str) -> float:
    """Bytes in a Kubernetes quantity (`100Gi`); NaN when it is not one."""
    number = quantity.rstrip("kMGTi")
    try:
        return float(number) * _UNITS[quantity[len(number):]]
    except (KeyError, ValueError):
        return float("nan")


def _thanos_bytes(size: str) -> float:
    """Bytes in a Thanos size flag (`2GB`, `512MB`: base 2, as Thanos reads them); NaN when it is not one."""
    units = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4,
             "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}
    number = size.rstrip("KMGTiBb")
    try:
        return float(number) * units[size[len(number):].upper() or "B"]
    except (KeyError, ValueError):
        return float("nan")
