"""Datasets as their files hold them (CIFAR batches, NAS-Bench-201's splits and archive, image
folders, scikit-learn's digits), read without running code, and the loaders over a worker's share."""
