"""Multi-modal data: preparation (MMRec / Amazon / synthetic), file layout, feature alignment, dataset."""
