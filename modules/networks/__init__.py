"""Extra networks: LoRA/LyCORIS files merged into the loaded model's weights, and their library."""
