"""Items: the normalised :class:`Product` (a dataclass, one shape for every API).

Inputs that do not become products travel as :class:`FailureRecord` on a signal (outcomes.py).
"""

from .aop.product import Attribute, PriceTier, Product, Seller, Shipping, Sku, SkuAttribute
from .outcomes import FailureRecord

__all__ = ["Attribute", "FailureRecord", "PriceTier", "Product", "Seller", "Shipping", "Sku", "SkuAttribute"]
