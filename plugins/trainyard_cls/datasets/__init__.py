"""Classification datasets: image folders, file lists, CIFAR, MNIST and generated images."""
