"""Detection datasets: COCO files, Pascal VOC XML and generated shapes with boxes."""
