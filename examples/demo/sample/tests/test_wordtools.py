"""The sample package's tests, with the standard library's unittest (nothing to install)."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wordtools import slugify, top_words, word_count


class WordtoolsTest(unittest.TestCase):
    def test_word_count_counts_words_not_spaces(self) -> None:
        self.assertEqual(word_count("  the quick  brown fox "), 4)
        self.assertEqual(word_count(""), 0)

    def test_slugify_joins_lower_case_words(self) -> None:
        self.assertEqual(slugify("Hello, World: It's Alfred!"), "hello-world-it's-alfred")

    def test_top_words_orders_by_frequency_then_first_appearance(self) -> None:
        self.assertEqual(top_words("b a b c a b", 2), [("b", 3), ("a", 2)])


if __name__ == "__main__":
    unittest.main()
