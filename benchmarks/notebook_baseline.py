"""The teaching notebook's code for the speed comparison, kept verbatim: the baseline compare_speed.py measures."""

# rnn-warmup-notebook, section 4, as written. Only changes: the cells are functions (run_notebook runs them in the
# notebook's order, seeded as the notebook seeds them), and the adding cell's test loss uses nn.MSELoss() where
# the notebook referred to an undefined global `criterion`.

from __future__ import annotations


def run_notebook(seed: int = 42) -> None:
    import random

    import numpy as np
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    notebook_copy_memory()
    notebook_sequential_xor()
    notebook_adding()


def notebook_copy_memory() -> None:
    import torch
    from torch import nn, optim

    class RecurrentModel(nn.Module):
        def __init__(self, input_size, hidden_size, output_size, rnn_type='rnn', num_layers=1):
            super().__init__()
            self.hidden_size = hidden_size
            self.num_layers = num_layers
            self.rnn_type = rnn_type
            if rnn_type == 'rnn':
                self.rnn = nn.RNN(input_size, hidden_size, num_layers, batch_first=True)
            elif rnn_type == 'gru':
                self.rnn = nn.GRU(input_size, hidden_size, num_layers, batch_first=True)
            elif rnn_type == 'lstm':
                self.rnn = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
            else:
                raise ValueError(f"Unknown RNN type: {rnn_type}")
            self.fc = nn.Linear(hidden_size, output_size)

        def forward(self, x, hidden=None):
            batch_size = x.size(0)
            if hidden is None:
                if self.rnn_type == 'lstm':
                    h0 = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
                    c0 = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
                    hidden = (h0, c0)
                else:
                    hidden = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
            if self.rnn_type == 'lstm':
                rnn_output, (h_n, c_n) = self.rnn(x, hidden)
                final_hidden = (h_n, c_n)
            else:
                rnn_output, h_n = self.rnn(x, hidden)
                final_hidden = h_n
            output = self.fc(rnn_output[:, -1, :])
            return output, final_hidden

    def generate_copy_memory_data(batch_size, seq_length, feature_dim, device='cpu'):
        X = torch.zeros(batch_size, seq_length, feature_dim, device=device)
        target_values = torch.rand(batch_size, feature_dim, device=device)
        X[:, 0, :] = target_values
        for i in range(1, seq_length):
            X[:, i, :] = torch.rand(batch_size, feature_dim, device=device) * 0.1
        y = target_values
        return X, y

    def train_copy_memory(model_type, seq_length, epochs=100, batch_size=64, hidden_size=64, feature_dim=10):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = RecurrentModel(input_size=feature_dim, hidden_size=hidden_size, output_size=feature_dim,
                               rnn_type=model_type, num_layers=1).to(device)
        optimizer = optim.Adam(model.parameters(), lr=0.001)
        criterion = nn.MSELoss()
        losses = []
        for epoch in range(epochs):
            model.train()
            epoch_loss = 0.0
            num_batches = 10
            for _ in range(num_batches):
                X, y = generate_copy_memory_data(batch_size, seq_length, feature_dim, device)
                optimizer.zero_grad()
                output, _ = model(X)
                loss = criterion(output, y)
                epoch_loss += loss.item()
                loss.backward()
                optimizer.step()
            avg_loss = epoch_loss / num_batches
            losses.append(avg_loss)
            if (epoch + 1) % 10 == 0:
                print(f"Epoch {epoch+1}/{epochs}, Loss: {avg_loss:.4f}")
        return model, losses

    seq_length = 50
    print("Training RNN on copy memory task:")
    rnn_model, rnn_losses = train_copy_memory('rnn', seq_length=seq_length, epochs=100)
    print("\nTraining GRU on copy memory task:")
    gru_model, gru_losses = train_copy_memory('gru', seq_length=seq_length, epochs=100)
    print("\nTraining LSTM on copy memory task:")
    lstm_model, lstm_losses = train_copy_memory('lstm', seq_length=seq_length, epochs=100)
    print(f"\nFinal losses:\nRNN: {rnn_losses[-1]:.6f}\nGRU: {gru_losses[-1]:.6f}\nLSTM: {lstm_losses[-1]:.6f}")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    X_test, y_test = generate_copy_memory_data(batch_size=16, seq_length=seq_length, feature_dim=10, device=device)
    with torch.no_grad():
        rnn_output, _ = rnn_model(X_test)
        gru_output, _ = gru_model(X_test)
        lstm_output, _ = lstm_model(X_test)
        rnn_loss = nn.MSELoss()(rnn_output, y_test).item()
        gru_loss = nn.MSELoss()(gru_output, y_test).item()
        lstm_loss = nn.MSELoss()(lstm_output, y_test).item()
    print(f"\nTest losses:\nRNN: {rnn_loss:.6f}\nGRU: {gru_loss:.6f}\nLSTM: {lstm_loss:.6f}")


def notebook_sequential_xor() -> None:
    import torch
    from torch import nn, optim

    def generate_sequential_xor_data(batch_size, seq_length, device='cpu'):
        X = torch.randint(0, 2, (batch_size, seq_length, 1), dtype=torch.float, device=device)
        y = torch.zeros(batch_size, seq_length, 1, device=device)
        for i in range(1, seq_length):
            y[:, i, 0] = torch.logical_xor(X[:, i, 0].int(), X[:, i-1, 0].int()).float()
        return X, y

    class SequentialXORModel(nn.Module):
        def __init__(self, hidden_size, rnn_type='rnn', num_layers=1):
            super().__init__()
            self.hidden_size = hidden_size
            self.num_layers = num_layers
            self.rnn_type = rnn_type
            if rnn_type == 'rnn':
                self.rnn = nn.RNN(input_size=1, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
            elif rnn_type == 'gru':
                self.rnn = nn.GRU(input_size=1, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
            elif rnn_type == 'lstm':
                self.rnn = nn.LSTM(input_size=1, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
            else:
                raise ValueError(f"Unknown RNN type: {rnn_type}")
            self.fc = nn.Linear(hidden_size, 1)
            self.sigmoid = nn.Sigmoid()

        def forward(self, x, hidden=None):
            batch_size = x.size(0)
            if hidden is None:
                if self.rnn_type == 'lstm':
                    h0 = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
                    c0 = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
                    hidden = (h0, c0)
                else:
                    hidden = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
            rnn_output, _ = self.rnn(x, hidden)
            output = self.fc(rnn_output)
            output = self.sigmoid(output)
            return output

    def train_sequential_xor(model_type, seq_length, epochs=100, batch_size=64, hidden_size=32):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = SequentialXORModel(hidden_size=hidden_size, rnn_type=model_type, num_layers=1).to(device)
        optimizer = optim.Adam(model.parameters(), lr=0.001)
        criterion = nn.BCELoss()
        losses = []
        accuracies = []
        for epoch in range(epochs):
            model.train()
            epoch_loss = 0.0
            correct_preds = 0
            total_preds = 0
            num_batches = 5
            for _ in range(num_batches):
                X, y = generate_sequential_xor_data(batch_size, seq_length, device)
                optimizer.zero_grad()
                output = model(X)
                loss = criterion(output[:, 1:, :], y[:, 1:, :])
                epoch_loss += loss.item()
                predictions = (output[:, 1:, :] > 0.5).float()
                correct_preds += (predictions == y[:, 1:, :]).sum().item()
                total_preds += y[:, 1:, :].numel()
                loss.backward()
                optimizer.step()
            avg_loss = epoch_loss / num_batches
            avg_accuracy = 100 * correct_preds / total_preds
            losses.append(avg_loss)
            accuracies.append(avg_accuracy)
            if (epoch + 1) % 10 == 0:
                print(f"Epoch {epoch+1}/{epochs}, Loss: {avg_loss:.4f}, Accuracy: {avg_accuracy:.2f}%")
        return model, losses, accuracies

    seq_length = 20
    print("Training models on sequential XOR task:")
    rnn_model_xor, _, rnn_acc_xor = train_sequential_xor('rnn', seq_length, epochs=100)
    gru_model_xor, _, gru_acc_xor = train_sequential_xor('gru', seq_length, epochs=100)
    lstm_model_xor, _, lstm_acc_xor = train_sequential_xor('lstm', seq_length, epochs=100)
    print(f"\nFinal accuracies:\nRNN: {rnn_acc_xor[-1]:.2f}%\nGRU: {gru_acc_xor[-1]:.2f}%\n"
          f"LSTM: {lstm_acc_xor[-1]:.2f}%")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    X_test_xor, y_test_xor = generate_sequential_xor_data(batch_size=32, seq_length=seq_length, device=device)
    with torch.no_grad():
        rnn_preds = (rnn_model_xor(X_test_xor)[:, 1:, :] > 0.5).float()
        gru_preds = (gru_model_xor(X_test_xor)[:, 1:, :] > 0.5).float()
        lstm_preds = (lstm_model_xor(X_test_xor)[:, 1:, :] > 0.5).float()
        rnn_correct = (rnn_preds == y_test_xor[:, 1:, :]).sum().item()
        gru_correct = (gru_preds == y_test_xor[:, 1:, :]).sum().item()
        lstm_correct = (lstm_preds == y_test_xor[:, 1:, :]).sum().item()
        total = y_test_xor[:, 1:, :].numel()
    print(f"\nTest accuracies:\nRNN: {100 * rnn_correct / total:.2f}%\nGRU: {100 * gru_correct / total:.2f}%\n"
          f"LSTM: {100 * lstm_correct / total:.2f}%")


def notebook_adding() -> None:
    import torch
    from torch import nn, optim

    def generate_adding_problem_data(batch_size, seq_length, device='cpu'):
        values = torch.rand(batch_size, seq_length, device=device)
        half = seq_length // 2
        idx1 = torch.randint(0, half, (batch_size,), device=device)
        idx2 = torch.randint(half, seq_length, (batch_size,), device=device)
        mask = torch.zeros(batch_size, seq_length, device=device)
        for i in range(batch_size):
            mask[i, idx1[i]] = 1
            mask[i, idx2[i]] = 1
        X = torch.stack([values, mask], dim=2)
        y = torch.zeros(batch_size, 1, device=device)
        for i in range(batch_size):
            y[i, 0] = values[i, idx1[i]] + values[i, idx2[i]]
        return X, y

    class AddingModel(nn.Module):
        def __init__(self, hidden_size, rnn_type='rnn', num_layers=1):
            super().__init__()
            self.hidden_size = hidden_size
            self.num_layers = num_layers
            self.rnn_type = rnn_type
            if rnn_type == 'rnn':
                self.rnn = nn.RNN(input_size=2, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
            elif rnn_type == 'gru':
                self.rnn = nn.GRU(input_size=2, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
            elif rnn_type == 'lstm':
                self.rnn = nn.LSTM(input_size=2, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
            else:
                raise ValueError(f"Unknown RNN type: {rnn_type}")
            self.fc = nn.Linear(hidden_size, 1)

        def forward(self, x, hidden=None):
            batch_size = x.size(0)
            if hidden is None:
                if self.rnn_type == 'lstm':
                    h0 = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
                    c0 = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
                    hidden = (h0, c0)
                else:
                    hidden = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=x.device)
            rnn_output, _ = self.rnn(x, hidden)
            output = self.fc(rnn_output[:, -1, :])
            return output

    def train_adding_problem(model_type, seq_length, epochs=100, batch_size=64, hidden_size=64):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = AddingModel(hidden_size=hidden_size, rnn_type=model_type, num_layers=1).to(device)
        optimizer = optim.Adam(model.parameters(), lr=0.001)
        criterion = nn.MSELoss()
        losses = []
        baseline_mse = 0.167
        for epoch in range(epochs):
            model.train()
            epoch_loss = 0.0
            num_batches = 10
            for _ in range(num_batches):
                X, y = generate_adding_problem_data(batch_size, seq_length, device)
                optimizer.zero_grad()
                output = model(X)
                loss = criterion(output, y)
                epoch_loss += loss.item()
                loss.backward()
                optimizer.step()
            avg_loss = epoch_loss / num_batches
            losses.append(avg_loss)
            if (epoch + 1) % 10 == 0:
                print(f"Epoch {epoch+1}/{epochs}, Loss: {avg_loss:.4f}, Baseline: {baseline_mse:.4f}")
        return model, losses

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    criterion = nn.MSELoss()  # the notebook used an undefined global here
    for seq_len in [50, 100, 200]:
        print(f"\n--- Adding Problem with Sequence Length: {seq_len} ---")
        rnn_model_add, rnn_losses_add = train_adding_problem('rnn', seq_len, epochs=50)
        gru_model_add, gru_losses_add = train_adding_problem('gru', seq_len, epochs=50)
        lstm_model_add, lstm_losses_add = train_adding_problem('lstm', seq_len, epochs=50)
        print(f"\nFinal losses:\nRNN: {rnn_losses_add[-1]:.6f}\nGRU: {gru_losses_add[-1]:.6f}\n"
              f"LSTM: {lstm_losses_add[-1]:.6f}")
        X_test, y_test = generate_adding_problem_data(batch_size=32, seq_length=seq_len, device=device)
        with torch.no_grad():
            rnn_mse = criterion(rnn_model_add(X_test), y_test).item()
            gru_mse = criterion(gru_model_add(X_test), y_test).item()
            lstm_mse = criterion(lstm_model_add(X_test), y_test).item()
        print(f"\nTest MSE:\nRNN: {rnn_mse:.6f}\nGRU: {gru_mse:.6f}\nLSTM: {lstm_mse:.6f}")
