"""Names for the test sets that say what they are, and a warning where a class has too few test images.

eval.json keeps the key `balanced_test` for the main test set whatever its make-up; the reports call it
"balanced test" only when every class has the same number of test images (digits, synthetic, CIFAR),
and "test" otherwise (a folder's stratified split or its own test/ folder). Its balanced accuracy, the
mean per-class recall, is reported either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Below this many test images a class's recall moves in steps of 20 points or more.
FEW_TEST_IMAGES = 5


def count_test_images(metrics: dict[str, Any] | None) -> list[int] | None:
    """Test images per class: the row sums of the metrics' confusion matrix."""
    confusion = (metrics or {}).get("confusion")
    return [int(sum(row)) for row in confusion] if confusion else None


def name_of_test_set(metrics: dict[str, Any] | None) -> str:
    """ "balanced test" when every class has the same (non-zero) number of test images, else "test";
    metrics without a confusion matrix keep eval.json's name for them."""
    counts = count_test_images(metrics)
    if counts is None:
        return "balanced test"
    return "balanced test" if min(counts) > 0 and len(set(counts)) == 1 else "test"


def few_test_images(metrics: dict[str, Any] | None, class_names: Sequence[str] | None = None) -> str | None:
    """A one-line warning naming the classes with fewer than FEW_TEST_IMAGES test images, or None."""
    counts = count_test_images(metrics)
    if not counts:
        return None
    names = list(class_names) if class_names and len(class_names) == len(counts) else [str(c) for c in
                                                                                         range(len(counts))]
    few = [f"{names[c]} ({n})" for c, n in enumerate(counts) if n < FEW_TEST_IMAGES]
    if not few:
        return None
    return (f"{len(few)} of {len(counts)} classes have fewer than {FEW_TEST_IMAGES} test images: "
            f"{', '.join(few)}; their recall, and the balanced accuracy, rest on that few")
