"""UE-s and UE-c: sample-wise and class-wise unlearnable examples (Huang et al., ICLR 2021)."""

from dememo.protect.base import register_protector
from dememo.protect.error_min import ClassWiseConfig, ErrorMinimizing, MinMinConfig


@register_protector
class SampleWiseUE(ErrorMinimizing):
    name = "ue-s"
    description = "sample-wise error-minimizing noise (Huang et al. 2021)"
    Config = MinMinConfig
    class_wise = False


@register_protector
class ClassWiseUE(ErrorMinimizing):
    name = "ue-c"
    description = "class-wise error-minimizing noise (Huang et al. 2021)"
    Config = ClassWiseConfig
    class_wise = True
