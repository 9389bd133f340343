"""The human fool-rate study (SR3, Saharia et al. 2021, Sec. 4.3): two-alternative forced
choice between a method's output and the real high-resolution photograph.

- Task 1 shows the low-resolution input between the two: "Which of the two images is a
  better high quality version of the low resolution image in the middle?"
- Task 2 hides it: "Which image would you guess is from a camera?"

The modules, one idea each:

- ``plan``: each rater's seeded, balanced trial list (practice, main and vigilance trials);
- ``build``: the self-contained study folder (page, plan, images) from a preset's samples;
- ``store``: the answers in SQLite (WAL mode), one row per trial, never counted twice;
- ``server``: ``sr3bench study-serve``, the page served locally and each answer stored
  when it is given;
- ``importing``: answers of the static page (a CSV) checked, then loaded all or nothing;
- ``simulate``: answers drawn with known fool rates, always labelled simulated;
- ``analysis``: fool rates with Wilson and hierarchical-bootstrap intervals, per image,
  rater exclusion by vigilance, reaction times.

An answer row (``store.COLUMNS``): ``rater``, ``session``, ``trial`` (its index in the
rater's plan, practice included, from 0), ``kind`` (practice | main | vigilance),
``task`` (1 | 2), ``image`` (the test image's file name), ``method`` (the compared
method; ``vigilance`` for a vigilance trial, whose fake is the LR input enlarged by
nearest neighbour), ``method_side`` (left | right: where the method's output was shown),
``choice`` (left | right: the image the rater picked as real), ``reaction_ms``,
``display_ms`` (how long the pair was visible, measured in the page), ``timestamp``
(ISO 8601, UTC), ``user_agent`` and ``origin`` (served | imported | simulated). The
rater was fooled when ``choice == method_side``.
"""
