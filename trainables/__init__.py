"""Ray Train loops: the SD-DARTS search and the from-scratch evaluation of a genotype."""
