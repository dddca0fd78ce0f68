"""What the encoders read: MFCC features of clips, 28×28 images, cached feature banks and synthetic voices."""
