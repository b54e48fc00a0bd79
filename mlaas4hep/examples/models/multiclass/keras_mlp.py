# A Keras MLP for K classes (labels 0..K-1): softmax output, sparse categorical cross-entropy.
from keras.layers import Dense, Dropout, Input
from keras.models import Sequential
from tensorflow import keras


def model(idim, n_classes):
    ml_model = Sequential([Input(shape=(idim,)),
                           Dense(64, activation='relu'),
                           Dropout(0.2),
                           Dense(n_classes, activation='softmax')])
    ml_model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                     loss=keras.losses.SparseCategoricalCrossentropy(),
                     metrics=['accuracy'])
    return ml_model
