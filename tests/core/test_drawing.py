"""Labels of boxes never print over each other."""

from __future__ import annotations

import torch

from trainyard.drawing import draw_labelled_boxes, place_labels


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_labels_of_boxes_on_top_of_each_other_go_to_free_places():
    boxes = [[20, 40, 80, 100]] * 4
    corners = place_labels(boxes, [(50, 14)] * 4, canvas=(200, 200))
    assert all(corner is not None for corner in corners)  # above, inside the top, below, inside the bottom
    placed = [(x, y, 50, 14) for x, y in corners]
    assert not any(_overlap(a, b) for i, a in enumerate(placed) for b in placed[i + 1:])


def test_a_label_with_no_free_place_is_left_out():
    corners = place_labels([[20, 40, 80, 100]] * 5, [(50, 14)] * 5, canvas=(200, 200))
    assert corners[:4] == [c for c in corners[:4] if c is not None] and corners[4] is None


def test_labels_stay_on_the_canvas():
    ((x, y),) = place_labels([[190, 0, 199, 10]], [(50, 14)], canvas=(100, 200))
    assert 0 <= x <= 150 and 0 <= y <= 86


def test_boxes_are_drawn_in_their_own_colours():
    image = torch.zeros(3, 64, 64, dtype=torch.uint8)
    picture = draw_labelled_boxes(image, torch.tensor([[4.0, 30, 20, 60], [30, 30, 60, 60]]), ["a", "b"], [(255, 0, 0), (0, 0, 255)])
    assert picture[:, 45, 4].tolist() == [255, 0, 0] and picture[:, 45, 30].tolist() == [0, 0, 255]
